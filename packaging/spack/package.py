# Spack recipe for Sluice. A site copies this folder into a Spack repository as
# packages/sluice/ (or `spack repo add` a repository holding it) and installs with, e.g.:
#
#   spack install sluice +slurm +mpi ~cuda ^openmpi
#   spack install sluice +mpi ^mpich
#
# Each variant sets one CMake option of Sluice's CMakeLists.txt (SLUICE_WITH_*);
# tests/install/spack_recipe_test.py checks that every variant maps to an option there.
from spack.package import *


class Sluice(CMakePackage):
    """Workflows of tasks, run on a laptop, Slurm clusters and MPI ranks, with HDF5
    artifacts and a SQLite record of every run; a C++ SDK whose programs are their own
    workflow tools."""

    # Sluice has no public repository yet: a site points `git` at its clone (a path or a
    # URL) before `spack install`, or uses `spack develop sluice@main` on a checkout.
    git = "file:///opt/src/sluice"

    version("main", branch="main")

    variant("slurm", default=True,
            description="Drive Slurm through libslurm as well as its commands")
    variant("mpi", default=True, description="Build sluice-mpi, the MPI backend")
    variant("cuda", default=False,
            description="GPU detection through the CUDA runtime and the GPU examples")

    depends_on("cxx", type="build")
    depends_on("c", type="build")
    depends_on("cmake@3.20:", type="build")
    depends_on("pkgconfig", type="build")

    depends_on("tomlplusplus@3:")
    depends_on("cli11@2:")
    depends_on("fmt@9:")
    depends_on("nlohmann-json@3.10:")
    depends_on("tl-expected")
    depends_on("sqlite@3.35:")
    depends_on("hdf5~mpi")
    depends_on("xxhash")
    depends_on("catch2@2", type="test")

    depends_on("slurm", when="+slurm")
    depends_on("mpi", when="+mpi")
    depends_on("cuda", when="+cuda")

    # variant -> CMake option (tests/install/spack_recipe_test.py reads this table).
    variant_options = {
        "slurm": "SLUICE_WITH_SLURM",
        "mpi": "SLUICE_WITH_MPI",
        "cuda": "SLUICE_WITH_CUDA",
    }

    def cmake_args(self):
        args = [self.define_from_variant(option, variant)
                for variant, option in self.variant_options.items()]
        args.append(self.define("BUILD_TESTING", self.run_tests))
        # Spack's HDF5 ships its static archive beside the shared one only sometimes.
        args.append(self.define("SLUICE_STATIC_HDF5", False))
        if self.spec.satisfies("+mpi"):
            args.append(self.define("MPI_CXX_COMPILER", self.spec["mpi"].mpicxx))
        return args
