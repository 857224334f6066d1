"""Narrative XHTML: well-formed, in the XHTML namespace, and only what FHIR R4 allows.

FHIR R4 (narrative.html, constraint txt-1) limits ``Narrative.div`` to the basic HTML
formatting elements and attributes of HTML 4.0 chapters 10–13 and 15, anchors, images and
internal style: no scripts, forms, frames, objects, event handlers, ``head`` or ``body``, and
no external references through ``javascript:`` links. ``txt-2`` requires some non-whitespace
content. The markup is parsed with lxml with entities, DTDs and the network switched off, so
named HTML entities (``&reg;``) are refused as XHTML does.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from lxml import etree

XHTML_NS = "http://www.w3.org/1999/xhtml"
ALLOWED_ELEMENTS = frozenset((
    "a", "abbr", "acronym", "address", "b", "big", "blockquote", "br", "caption", "cite", "code",
    "col", "colgroup", "dd", "dfn", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "li", "ol", "p", "pre", "q", "samp", "small", "span", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "ul", "var", "bdo", "kbd", "map",
    "area", "style",
))
ALLOWED_ATTRIBUTES = frozenset((
    "title", "style", "class", "id", "lang", "dir", "accesskey", "tabindex", "span", "width",
    "align", "valign", "char", "charoff", "abbr", "axis", "headers", "scope", "rowspan", "colspan",
    "href", "name", "rel", "rev", "src", "alt", "longdesc", "height", "border", "cellspacing",
    "cellpadding", "summary", "shape", "coords", "start", "type", "value", "frame", "rules",
    "nowrap", "bgcolor", "hreflang", "charset", "datetime", "cite", "compact", "clear", "size",
    "color", "face",
))
_XML_ATTRIBUTES = frozenset({"{http://www.w3.org/XML/1998/namespace}lang",
                             "{http://www.w3.org/XML/1998/namespace}space"})
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
MAX_DIV = 1024 * 1024


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return None, tag


_MEMO_LENGTH = 4096  # narratives up to this size (most of them) are judged once; longer ones each time


def _problems(root: Any) -> tuple[str, ...]:
    problems: list[str] = []
    ns, name = _local(root.tag)
    if name != "div":
        problems.append(f"the narrative's root element must be <div>, found <{name}>")
    if ns != XHTML_NS:
        problems.append(f"the narrative <div> must be in the XHTML namespace ({XHTML_NS})")
    for el in root.iter():
        if not isinstance(el.tag, str):
            if isinstance(el, etree._Entity):
                problems.append(f"entity '&{el.name};' is not allowed in XHTML")
            continue
        ens, ename = _local(el.tag)
        if ens != XHTML_NS:
            problems.append(f"element <{ename}> is not in the XHTML namespace")
        elif ename not in ALLOWED_ELEMENTS:
            problems.append(f"element <{ename}> is not allowed in a FHIR narrative")
        for attr, value in el.attrib.items():
            ans, aname = _local(attr)
            if attr in _XML_ATTRIBUTES:
                continue
            if aname.lower().startswith("on"):
                problems.append(f"event handler attribute '{aname}' on <{ename}> is not allowed")
            elif ans is not None or aname not in ALLOWED_ATTRIBUTES:
                problems.append(f"attribute '{aname}' on <{ename}> is not allowed in a FHIR narrative")
            elif aname in ("href", "src") and value.strip().lower().startswith(("javascript:", "vbscript:")):
                problems.append(f"'{aname}' on <{ename}> must not run script")
    return tuple(dict.fromkeys(problems))


def _judge(div: str) -> tuple[tuple[str, ...], bool]:
    """(txt-1 problems, txt-2 empty) from one parse; a narrative that does not parse is not also empty."""
    if len(div) > MAX_DIV:
        return ("narrative is larger than 1 MB",), False
    try:
        root: Any = etree.fromstring(div.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as exc:
        return (f"narrative is not well-formed XHTML: {exc.msg}",), False
    has_image = any(_local(el.tag)[1] == "img" for el in root.iter() if isinstance(el.tag, str))
    return _problems(root), not has_image and not "".join(root.itertext()).strip()


_judge_short = lru_cache(maxsize=4096)(_judge)


def judge(div: str) -> tuple[tuple[str, ...], bool]:
    return _judge_short(div) if len(div) <= _MEMO_LENGTH else _judge(div)


def narrative_problems(div: str) -> tuple[str, ...]:
    """Why a ``Narrative.div`` value breaks FHIR's XHTML rules (empty when it does not): txt-1."""
    return judge(div)[0]


def narrative_text_empty(div: str) -> bool:
    """txt-2: the narrative has no non-whitespace text (an image counts as content)."""
    return judge(div)[1]
