"""Which language a file is in, and what its definitions look like to tree-sitter.

Each tree-sitter language gets a :class:`LanguageSpec`: the grammar's name in
``tree-sitter-language-pack`` and a table from node type to definition kind; a definition's
name and final kind are read by :mod:`chunking.definitions`. Languages without a table are
still chunked structurally by cAST, only without symbols.

Grammars load lazily, on first use, and a grammar that fails to load (or to parse) makes the
chunker fall back to line windows for that file instead of failing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tree_sitter import Language

__all__ = [
    "EXTENSIONS",
    "FILENAMES",
    "LanguageSpec",
    "SPECS",
    "TEXT_LANGUAGES",
    "detect_language",
    "load_language",
]

logger = logging.getLogger(__name__)

# Kinds that make a nested function a "method".
CONTAINER_KINDS = frozenset(
    {"class", "struct", "impl", "trait", "interface", "enum", "object", "record", "protocol",
     "extension", "union"}
)
# Languages handled by the text chunkers rather than by a grammar.
TEXT_LANGUAGES = frozenset({"markdown", "rst", "text"})


@dataclass(frozen=True)
class LanguageSpec:
    """How cAST reads one language.

    Attributes:
        name: our language name, as stored in ``Chunk.language``.
        grammar: the grammar's name in ``tree-sitter-language-pack``.
        definitions: node type -> kind ("function", "class", "struct", ...).
    """

    name: str
    grammar: str
    definitions: Mapping[str, str] = field(default_factory=dict)


_FN = "function"
_CLASS = "class"

_DEFS: dict[str, dict[str, str]] = {
    "python": {"function_definition": _FN, "class_definition": _CLASS,
               "decorated_definition": "decorated"},
    "javascript": {
        "function_declaration": _FN, "generator_function_declaration": _FN,
        "class_declaration": _CLASS, "method_definition": "method",
        "lexical_declaration": "variable", "variable_declaration": "variable",
    },
    "typescript": {
        "function_declaration": _FN, "generator_function_declaration": _FN,
        "class_declaration": _CLASS, "abstract_class_declaration": _CLASS,
        "method_definition": "method", "interface_declaration": "interface",
        "enum_declaration": "enum", "internal_module": "namespace", "module": "module",
        "lexical_declaration": "variable", "variable_declaration": "variable",
        "function_signature": _FN, "abstract_method_signature": "method",
    },
    "go": {
        "function_declaration": _FN, "method_declaration": "method", "type_spec": "type",
    },
    "rust": {
        "function_item": _FN, "struct_item": "struct", "enum_item": "enum",
        "union_item": "union", "trait_item": "trait", "impl_item": "impl", "mod_item": "module",
        "macro_definition": "macro", "function_signature_item": _FN,
    },
    "java": {
        "class_declaration": _CLASS, "interface_declaration": "interface",
        "enum_declaration": "enum", "record_declaration": "record",
        "annotation_type_declaration": "interface", "method_declaration": _FN,
        "constructor_declaration": "constructor",
    },
    "c": {"function_definition": _FN, "struct_specifier": "struct", "union_specifier": "union",
          "enum_specifier": "enum"},
    "cpp": {
        "function_definition": _FN, "class_specifier": _CLASS, "struct_specifier": "struct",
        "union_specifier": "union", "enum_specifier": "enum", "namespace_definition": "namespace",
        "template_declaration": "template",
    },
    "csharp": {
        "class_declaration": _CLASS, "struct_declaration": "struct",
        "interface_declaration": "interface", "enum_declaration": "enum",
        "record_declaration": "record", "namespace_declaration": "namespace",
        "file_scoped_namespace_declaration": "namespace", "method_declaration": _FN,
        "constructor_declaration": "constructor", "property_declaration": "property",
        "local_function_statement": _FN,
    },
    "ruby": {"method": _FN, "singleton_method": _FN, "class": _CLASS, "module": "module",
             "singleton_class": _CLASS},
    "php": {
        "function_definition": _FN, "method_declaration": _FN, "class_declaration": _CLASS,
        "interface_declaration": "interface", "trait_declaration": "trait",
        "enum_declaration": "enum", "namespace_definition": "namespace",
    },
    "kotlin": {"class_declaration": _CLASS, "object_declaration": "object",
               "function_declaration": _FN, "companion_object": "object"},
    "scala": {
        "class_definition": _CLASS, "object_definition": "object", "trait_definition": "trait",
        "function_definition": _FN, "enum_definition": "enum",
    },
    "swift": {
        "class_declaration": _CLASS, "protocol_declaration": "protocol",
        "function_declaration": _FN, "init_declaration": "constructor",
    },
    "bash": {"function_definition": _FN},
    "lua": {"function_declaration": _FN},
    "haskell": {"function": _FN, "data_type": "type", "class": _CLASS, "instance": "impl"},
    "elixir": {"call": "call"},
    "zig": {"Decl": "decl"},
    "ocaml": {"value_definition": _FN, "module_definition": "module", "type_definition": "type"},
    "r": {"binary_operator": _FN},
    "julia": {"function_definition": _FN, "struct_definition": "struct",
              "module_definition": "module"},
    "dart": {"class_definition": _CLASS, "function_signature": _FN, "method_signature": _FN},
    "perl": {"subroutine_declaration_statement": _FN, "package_statement": "package"},
    "elm": {"value_declaration": _FN, "type_declaration": "type",
            "type_alias_declaration": "type"},
    "erlang": {"fun_decl": _FN},
    "objc": {"class_interface": _CLASS, "class_implementation": _CLASS,
             "method_definition": _FN, "function_definition": _FN},
    "groovy": {},  # this grammar has no declaration nodes, only commands
    "solidity": {"contract_declaration": _CLASS, "function_definition": _FN,
                 "interface_declaration": "interface", "library_declaration": "module"},
    "proto": {"message": "message", "service": "service", "rpc": _FN, "enum": "enum"},
    "cuda": {"function_definition": _FN, "class_specifier": _CLASS,
             "struct_specifier": "struct", "namespace_definition": "namespace"},
    "arduino": {"function_definition": _FN, "class_specifier": _CLASS},
    "gdscript": {"function_definition": _FN, "class_definition": _CLASS},
    "nim": {"proc_declaration": _FN, "func_declaration": _FN, "method_declaration": _FN},
    "v": {"function_declaration": _FN, "struct_declaration": "struct"},
    "odin": {"procedure_declaration": _FN},
    "fish": {"function_definition": _FN},
    "powershell": {"function_statement": _FN, "class_statement": _CLASS},
    "starlark": {"function_definition": _FN},
    "hack": {"function_declaration": _FN, "class_declaration": _CLASS,
             "method_declaration": _FN},
    "apex": {"class_declaration": _CLASS, "method_declaration": _FN},
    "d": {"function_declaration": _FN, "class_declaration": _CLASS,
          "struct_declaration": "struct"},
    "gleam": {"function": _FN},
    "matlab": {"function_definition": _FN},
    "fortran": {"function": _FN, "subroutine": _FN, "module": "module"},
    "pascal": {"defProc": _FN},
    "tcl": {"procedure": _FN},
    "commonlisp": {},
    "scheme": {},
    "racket": {},
    "clojure": {"list_lit": "call"},
    "elisp": {"function_definition": _FN},
    "fsharp": {"function_or_value_defn": _FN, "type_definition": "type"},
    "purescript": {"function": _FN},
    "graphql": {"object_type_definition": "type"},
    "thrift": {"struct_definition": "struct", "service_definition": "service",
               "function_definition": _FN},
    "hcl": {"block": "block"},
    "terraform": {"block": "block"},
    "vim": {"function_definition": _FN},
    "glsl": {"function_definition": _FN, "struct_specifier": "struct"},
    "hlsl": {"function_definition": _FN, "struct_specifier": "struct"},
    "wgsl": {"function_declaration": _FN, "struct_declaration": "struct"},
    "verilog": {"module_declaration": "module"},
    "vhdl": {},
    "sql": {}, "html": {}, "css": {}, "scss": {}, "yaml": {}, "toml": {}, "json": {},
    "xml": {}, "make": {}, "cmake": {}, "dockerfile": {}, "nix": {}, "latex": {},
    "svelte": {}, "vue": {}, "astro": {}, "jsonnet": {}, "ini": {}, "properties": {},
    "meson": {}, "ninja": {}, "prisma": {}, "smithy": {}, "capnp": {}, "kdl": {}, "ron": {},
    "typst": {}, "puppet": {}, "rego": {}, "sparql": {}, "llvm": {}, "asm": {}, "smali": {},
    "ada": {}, "haxe": {}, "janet": {}, "fennel": {}, "squirrel": {}, "pony": {}, "cairo": {},
    "bicep": {}, "tablegen": {}, "wat": {}, "wast": {}, "luau": {"function_declaration": _FN},
    "actionscript": {}, "agda": {}, "bibtex": {}, "clarity": {}, "func": {}, "hare": {},
    "ispc": {}, "linkerscript": {}, "magik": {}, "netlinx": {}, "nqc": {}, "qmljs": {},
    "re2c": {}, "twig": {}, "uxntal": {}, "yuck": {}, "firrtl": {}, "bitbake": {}, "bsl": {},
    "gn": {}, "kconfig": {}, "hyprlang": {}, "udev": {}, "beancount": {}, "mermaid": {},
    "org": {}, "po": {}, "requirements": {}, "ocaml_interface": {}, "tsx": {},
}
_DEFS["tsx"] = _DEFS["typescript"]

# Our name -> grammar name where they differ. COBOL is left out on purpose: its grammar
# never returns on some inputs.
_GRAMMAR = {"cuda": "cuda"}

SPECS: dict[str, LanguageSpec] = {
    name: LanguageSpec(name, _GRAMMAR.get(name, name), defs) for name, defs in _DEFS.items()
}

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp",
    ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp", ".inl": "cpp",
    ".cs": "csharp", ".rb": "ruby", ".rake": "ruby", ".gemspec": "ruby",
    ".php": "php", ".kt": "kotlin", ".kts": "kotlin", ".scala": "scala", ".sc": "scala",
    ".swift": "swift", ".sh": "bash", ".bash": "bash", ".zsh": "bash", ".lua": "lua",
    ".hs": "haskell", ".ex": "elixir", ".exs": "elixir", ".zig": "zig",
    ".ml": "ocaml", ".mli": "ocaml_interface", ".r": "r", ".R": "r", ".jl": "julia",
    ".dart": "dart", ".pl": "perl", ".pm": "perl", ".elm": "elm", ".clj": "clojure",
    ".cljs": "clojure", ".cljc": "clojure", ".edn": "clojure", ".erl": "erlang",
    ".hrl": "erlang", ".m": "objc", ".mm": "objc", ".sql": "sql", ".html": "html",
    ".htm": "html", ".css": "css", ".scss": "scss", ".yaml": "yaml", ".yml": "yaml",
    ".toml": "toml", ".json": "json", ".jsonc": "json", ".xml": "xml", ".svg": "xml",
    ".groovy": "groovy", ".gradle": "groovy", ".sol": "solidity", ".proto": "proto",
    ".cu": "cuda", ".cuh": "cuda", ".ino": "arduino", ".gd": "gdscript", ".nim": "nim",
    ".v": "v", ".odin": "odin", ".fish": "fish", ".ps1": "powershell", ".psm1": "powershell",
    ".bzl": "starlark", ".star": "starlark", ".hack": "hack", ".cls": "apex", ".d": "d",
    ".gleam": "gleam", ".f90": "fortran", ".f95": "fortran", ".f03": "fortran",
    ".pas": "pascal", ".tcl": "tcl", ".lisp": "commonlisp", ".cl": "commonlisp",
    ".scm": "scheme", ".rkt": "racket", ".el": "elisp", ".fs": "fsharp", ".fsx": "fsharp",
    ".purs": "purescript", ".graphql": "graphql", ".gql": "graphql", ".thrift": "thrift",
    ".hcl": "hcl", ".tf": "terraform", ".tfvars": "terraform", ".vim": "vim",
    ".glsl": "glsl", ".vert": "glsl", ".frag": "glsl", ".hlsl": "hlsl", ".wgsl": "wgsl",
    ".sv": "verilog", ".svh": "verilog", ".vhd": "vhdl", ".vhdl": "vhdl", ".mk": "make",
    ".cmake": "cmake", ".nix": "nix", ".tex": "latex", ".svelte": "svelte", ".vue": "vue",
    ".astro": "astro", ".jsonnet": "jsonnet", ".libsonnet": "jsonnet", ".ini": "ini",
    ".cfg": "ini", ".properties": "properties", ".prisma": "prisma", ".smithy": "smithy",
    ".capnp": "capnp", ".kdl": "kdl", ".ron": "ron", ".typ": "typst", ".pp": "puppet",
    ".rego": "rego", ".rq": "sparql", ".ll": "llvm", ".asm": "asm", ".s": "asm",
    ".smali": "smali", ".adb": "ada", ".ads": "ada", ".hx": "haxe", ".janet": "janet",
    ".fnl": "fennel", ".nut": "squirrel", ".pony": "pony", ".cairo": "cairo",
    ".bicep": "bicep", ".td": "tablegen", ".wat": "wat", ".wast": "wast", ".luau": "luau",
    ".as": "actionscript", ".agda": "agda", ".bib": "bibtex", ".clar": "clarity",
    ".ha": "hare", ".ispc": "ispc", ".ld": "linkerscript", ".magik": "magik", ".qml": "qmljs",
    ".re": "re2c", ".twig": "twig", ".tal": "uxntal", ".yuck": "yuck", ".fir": "firrtl",
    ".bb": "bitbake", ".bbappend": "bitbake", ".gn": "gn", ".gni": "gn",
    ".beancount": "beancount", ".mmd": "mermaid", ".org": "org", ".po": "po", ".pot": "po",
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown", ".rst": "rst",
    ".txt": "text", ".text": "text",
}

FILENAMES: dict[str, str] = {
    "Makefile": "make", "makefile": "make", "GNUmakefile": "make", "Dockerfile": "dockerfile",
    "Containerfile": "dockerfile", "CMakeLists.txt": "cmake", "Rakefile": "ruby",
    "Gemfile": "ruby", "Vagrantfile": "ruby", "BUILD": "starlark", "BUILD.bazel": "starlark",
    "WORKSPACE": "starlark", "Tiltfile": "starlark", "Jenkinsfile": "groovy",
    "Kconfig": "kconfig", "meson.build": "meson", "build.ninja": "ninja",
    "requirements.txt": "requirements", ".bashrc": "bash", ".zshrc": "bash",
    ".profile": "bash", ".bash_profile": "bash", "PKGBUILD": "bash", "go.mod": "gomod",
}

_INTERPRETERS = {
    "python": "python", "python3": "python", "python2": "python", "sh": "bash",
    "bash": "bash", "zsh": "bash", "dash": "bash", "ksh": "bash", "node": "javascript",
    "nodejs": "javascript", "deno": "typescript", "ruby": "ruby", "perl": "perl",
    "php": "php", "lua": "lua", "Rscript": "r", "julia": "julia", "fish": "fish",
    "tclsh": "tcl", "pwsh": "powershell",
}


def detect_language(path: str, source: str | None = None) -> str:
    """Name the language of a file from its name, then its shebang line.

    Args:
        path: the file's path; only the name and extension are used.
        source: the file's text, consulted for a ``#!`` line when the name says nothing.

    Returns:
        A key of :data:`SPECS`, one of :data:`TEXT_LANGUAGES`, or ``"text"`` if unknown.
    """
    name = PurePosixPath(path.replace("\\", "/")).name
    if name in FILENAMES:
        return FILENAMES[name]
    if name.startswith("Dockerfile.") or name.endswith(".dockerfile"):
        return "dockerfile"
    suffix = PurePosixPath(name).suffix
    language = EXTENSIONS.get(suffix) or EXTENSIONS.get(suffix.lower())
    if language:
        return language
    if source and source.startswith("#!"):
        words = source[2:].split("\n", 1)[0].split()
        if words and words[0].rsplit("/", 1)[-1] == "env":
            words = [w for w in words[1:] if not w.startswith("-")]
        if words:
            interpreter = words[0].rsplit("/", 1)[-1]
            return _INTERPRETERS.get(interpreter) or _INTERPRETERS.get(
                interpreter.rstrip("0123456789."), "text")
    return "text"


@functools.cache
def load_language(grammar: str) -> Language | None:
    """Load a grammar from tree-sitter-language-pack, once; None if it cannot be loaded."""
    try:
        from tree_sitter_language_pack import get_language

        return get_language(grammar)  # type: ignore[arg-type]
    except Exception as error:  # noqa: BLE001 - any loader failure means "use line windows"
        logger.warning("tree-sitter grammar %r failed to load (%s); using line windows",
                       grammar, error)
        return None
