#!/usr/bin/env python3
"""The Spack recipe (packaging/spack/package.py) against the CMake options that exist.

Reads the recipe as Python source, without Spack: every variant() is in the
variant_options table, every option that table names is an option() (or a cache setting)
of a CMakeLists.txt or cmake/*.cmake in the tree, and every SLUICE_WITH_* option of the
top-level CMakeLists.txt has a variant. Exit 0 when all hold, 1 with the mismatches.

    spack_recipe_test.py SOURCE_DIR
"""
import ast
import pathlib
import re
import sys


def recipe_facts(path):
    tree = ast.parse(path.read_text(), str(path))
    variants, table, defines = set(), {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "variant" and node.args:
            variants.add(ast.literal_eval(node.args[0]))
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "variant_options" for t in node.targets):
            table = ast.literal_eval(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "define" and node.args \
                and isinstance(node.args[0], ast.Constant):
            defines.add(node.args[0].value)
    return variants, table, defines


def cmake_options(root):
    names, with_options = set(), set()
    # The source folders only, never a build folder beside them.
    files = [root / "CMakeLists.txt"] + list((root / "cmake").glob("*.cmake"))
    for top in ("core", "backends", "launchers", "examples", "tests", "bench"):
        files += list((root / top).rglob("CMakeLists.txt"))
    for path in files:
        text = path.read_text()
        for m in re.finditer(r"^\s*option\(\s*([A-Za-z0-9_]+)", text, re.M):
            names.add(m.group(1))
            if path == root / "CMakeLists.txt" and m.group(1).startswith("SLUICE_WITH_"):
                with_options.add(m.group(1))
    return names, with_options


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    variants, table, defines = recipe_facts(root / "packaging/spack/package.py")
    options, with_options = cmake_options(root)
    # CMake's own variables the recipe may set.
    cmake_builtin = {"BUILD_TESTING", "MPI_CXX_COMPILER", "CMAKE_PREFIX_PATH"}
    errors = []
    if not variants:
        errors.append("the recipe declares no variant()")
    for v in sorted(variants - table.keys()):
        errors.append(f"variant '{v}' maps to no CMake option (variant_options)")
    for v in sorted(table.keys() - variants):
        errors.append(f"variant_options names '{v}', which is no variant()")
    for v, option in sorted(table.items()):
        if option not in options:
            errors.append(f"variant '{v}' maps to {option}, which no option() defines")
    for option in sorted(with_options - set(table.values())):
        errors.append(f"CMakeLists.txt option {option} has no variant")
    for name in sorted(defines - options - cmake_builtin):
        errors.append(f"the recipe sets {name}, which no option() defines")
    for e in errors:
        print("FAILED:", e)
    if not errors:
        print("ok:", ", ".join(f"+{v} -> {o}" for v, o in sorted(table.items())))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
