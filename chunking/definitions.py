"""Reading a definition's name and kind off a tree-sitter node, language by language.

Names use ``.`` as the only scope separator: ``::`` (C++, Rust, Ruby, PHP ``\\``) and Lua's
``:`` become ``.``. Where a node type matches but the node is not really a definition (a
JavaScript ``const`` holding no function, a C ``struct foo *p`` without a body, an Elixir call
that is not ``def``), :func:`definition_name` returns None and the node is ignored.
"""

from __future__ import annotations

from tree_sitter import Node

from chunking.languages import LanguageSpec

__all__ = ["definition_kind", "definition_name"]

_FN = "function"

# Node types that hold a definition's name when the grammar gives it no "name" field.
_NAME_TYPES = frozenset({
    "identifier", "type_identifier", "simple_identifier", "constant", "name",
    "field_identifier", "property_identifier", "word", "scope_resolution", "qualified_identifier",
    "namespace_identifier", "variable", "atom", "package_name", "scoped_identifier",
    "value_name", "module_name", "lower_case_identifier", "upper_case_identifier",
    "IDENTIFIER", "sym_name", "alias",
})
# Children not searched for a name: bodies and parameter lists hold other names.
_NOT_NAME_HOLDERS = ("body", "block", "parameter", "argument", "statement")
# Lisp-like and Elixir definitions are calls; these heads make a call a definition.
_ELIXIR_DEFS = {"def": _FN, "defp": _FN, "defmacro": _FN, "defmacrop": _FN,
                "defguard": _FN, "defmodule": "module", "defprotocol": "protocol",
                "defimpl": "impl"}
_CLOJURE_DEFS = {"defn": _FN, "defn-": _FN, "defmacro": _FN, "defmulti": _FN,
                 "defmethod": _FN, "defprotocol": "protocol", "defrecord": "record",
                 "deftype": "type", "definterface": "interface"}
_DECLARATOR_STOP = frozenset({
    "identifier", "field_identifier", "qualified_identifier", "destructor_name",
    "operator_name", "type_identifier", "scoped_identifier", "template_function",
    "template_method",
})
_FUNCTION_VALUES = frozenset({
    "arrow_function", "function_expression", "function", "generator_function", "class",
})


def _text(node: Node | None) -> str | None:
    if node is None or node.text is None:
        return None
    return node.text.decode("utf-8", "replace")


def _clean(name: str | None) -> str | None:
    """One scope separator everywhere: ``::`` (C++, Rust, Ruby) and Lua's ``:`` become ``.``."""
    if not name:
        return None
    name = " ".join(name.split())
    name = name.replace("::", ".").replace(":", ".").replace("->", ".").replace("\\", ".")
    return name.strip(".") or None


def _declarator_name(node: Node) -> str | None:
    """Follow a C/C++ declarator chain (pointer, function, reference) down to the name."""
    current: Node | None = node.child_by_field_name("declarator")
    for _ in range(16):
        if current is None:
            return None
        if current.type in _DECLARATOR_STOP:
            if current.type in ("template_function", "template_method"):
                return _text(current.child_by_field_name("name"))
            return _text(current)
        current = current.child_by_field_name("declarator") or next(
            (c for c in current.named_children if "declarator" in c.type or c.type in
             _DECLARATOR_STOP), None)
    return None


def _go_receiver_type(node: Node) -> str | None:
    receiver = node.child_by_field_name("receiver")
    if receiver is None:
        return None
    for param in receiver.named_children:
        kind = param.child_by_field_name("type")
        while kind is not None and kind.type in ("pointer_type", "generic_type"):
            kind = kind.child_by_field_name("type") or (
                kind.named_children[0] if kind.named_children else None)
        return _text(kind)
    return None


def _rust_impl_name(node: Node) -> str | None:
    kind = node.child_by_field_name("type")
    while kind is not None and kind.type in ("generic_type", "reference_type"):
        kind = kind.child_by_field_name("type")
    return _text(kind)


def definition_name(language: str, node: Node) -> str | None:
    """The name a definition node declares, with ``.`` as the only scope separator.

    Returns None where the node turns out not to be a definition (a JavaScript ``const``
    that holds no function), or where no name can be found.
    """
    kind = node.type
    if language == "python" and kind == "decorated_definition":
        inner = node.child_by_field_name("definition")
        return definition_name(language, inner) if inner is not None else None
    if language in ("javascript", "typescript", "tsx") and kind in (
        "lexical_declaration", "variable_declaration"
    ):
        declarators = [c for c in node.named_children if c.type == "variable_declarator"]
        if len(declarators) != 1:
            return None
        value = declarators[0].child_by_field_name("value")
        if value is None or value.type not in _FUNCTION_VALUES:
            return None
        return _clean(_text(declarators[0].child_by_field_name("name")))
    if language == "go":
        if kind == "method_declaration":
            receiver = _go_receiver_type(node)
            name = _text(node.child_by_field_name("name"))
            return _clean(f"{receiver}.{name}" if receiver else name)
    if language == "rust" and kind == "impl_item":
        return _clean(_rust_impl_name(node))
    if language in ("c", "cpp", "cuda", "arduino", "glsl", "hlsl", "objc") and kind in (
        "function_definition",
    ):
        return _clean(_declarator_name(node))
    if kind in ("struct_specifier", "class_specifier", "union_specifier", "enum_specifier"):
        # A specifier without a body is a use ("struct foo *p"), not a definition.
        if node.child_by_field_name("body") is None:
            return None
    if kind == "template_declaration":
        return None
    special = _SPECIAL_NAMES.get(language)
    if special is not None:
        return _clean(special(node))
    named = node.child_by_field_name("name")
    if named is not None:
        return _clean(_text(named))
    for child in node.named_children:
        if child.type in _NAME_TYPES:
            return _clean(_text(child))
        if child.type in ("function_declarator", "function_head", "fun_decl_head",
                          "signature", "function_name"):
            return _definition_name_fallback(child)
    return None


def _descendant_name(node: Node, depth: int = 3) -> str | None:
    """The first name-like node below ``node``, breadth first, outside bodies and parameters."""
    level = [node]
    for _ in range(depth):
        following: list[Node] = []
        for current in level:
            for child in current.named_children:
                if child.type in _NAME_TYPES:
                    return _text(child)
                if not any(word in child.type.lower() for word in _NOT_NAME_HOLDERS):
                    following.append(child)
        level = following
    return None


def _call_head(node: Node, language: str) -> tuple[str | None, str | None]:
    """(definition head such as ``defn``, defined name) of an Elixir or Clojure call."""
    if language == "elixir":
        head = _text(node.child_by_field_name("target"))
        arguments = next((c for c in node.named_children if c.type == "arguments"), None)
        first = arguments.named_children[0] if arguments and arguments.named_children else None
        if first is not None and first.type in ("call", "binary_operator"):
            # "def sum(a, b)" is a call inside the call; "def a + b" guards are rare.
            first = first.child_by_field_name("target") or first.child_by_field_name("left")
        return head, _text(first)
    values = [c for c in node.named_children if c.type == "sym_lit"]
    if len(values) < 2 or node.named_children[0] is not values[0]:
        return None, None
    return _text(values[0]), _text(values[1])


def _zig_name(node: Node) -> str | None:
    for child in node.named_children:
        if child.type == "FnProto":
            return _text(child.child_by_field_name("function"))
        if child.type == "VarDecl" and _zig_container(child):
            return _text(child.child_by_field_name("variable_type_function"))
    return None


def _zig_container(node: Node) -> bool:
    level = [node]
    for _ in range(3):
        level = [c for n in level for c in n.named_children]
        if any(c.type == "ContainerDecl" for c in level):
            return True
    return False


def _r_name(node: Node) -> str | None:
    value = node.child_by_field_name("rhs")
    operator = node.child_by_field_name("operator")
    if value is None or value.type != "function_definition":
        return None
    if operator is not None and _text(operator) not in ("<-", "=", "<<-"):
        return None
    return _text(node.child_by_field_name("lhs"))


def _elixir_name(node: Node) -> str | None:
    head, name = _call_head(node, "elixir")
    return name if head in _ELIXIR_DEFS else None


def _clojure_name(node: Node) -> str | None:
    head, name = _call_head(node, "clojure")
    return name if head in _CLOJURE_DEFS else None


_SPECIAL_NAMES = {
    "zig": _zig_name,
    "r": _r_name,
    "elixir": _elixir_name,
    "clojure": _clojure_name,
    # Haskell's "function" is also a function *type* in signatures; only real ones have names.
    "haskell": lambda node: _text(node.child_by_field_name("name")),
    **{language: lambda node: _text(node.child_by_field_name("name")) or _descendant_name(node)
       for language in ("julia", "ocaml", "elm", "erlang", "proto")},
}


def _definition_name_fallback(node: Node) -> str | None:
    named = node.child_by_field_name("name")
    if named is not None:
        return _clean(_text(named))
    for child in node.named_children:
        if child.type in _NAME_TYPES:
            return _clean(_text(child))
    return None


def definition_kind(spec: LanguageSpec, node: Node) -> str:
    """The kind of a definition node; Go type specs and Python decorators are resolved."""
    kind = spec.definitions.get(node.type, "definition")
    if kind == "decorated":
        inner = node.child_by_field_name("definition")
        return spec.definitions.get(inner.type, _FN) if inner is not None else _FN
    if kind == "variable":
        return _FN
    if kind == "decl":  # Zig: a fn, or a const bound to a struct/enum/union
        is_fn = any(c.type == "FnProto" for c in node.named_children)
        return _FN if is_fn else "struct"
    if kind == "call":
        head, _ = _call_head(node, spec.name)
        table = _ELIXIR_DEFS if spec.name == "elixir" else _CLOJURE_DEFS
        return table.get(head or "", _FN)
    if kind == "type" and spec.name == "go":
        body = node.child_by_field_name("type")
        if body is not None and body.type == "struct_type":
            return "struct"
        if body is not None and body.type == "interface_type":
            return "interface"
    return kind
