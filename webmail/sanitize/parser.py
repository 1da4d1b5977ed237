"""html5lib's parser, bounded for hostile mail.

bleach parses with html5lib, which was not written for adversarial input:
some nesting, some long tokens and some text make it quadratic, and a long
enough numeric character reference makes bleach fail. The classes here keep
the work in proportion to the input:

- ``MAX_DEPTH`` open elements and ``MAX_ELEMENTS`` elements at most; tags
  beyond are ignored and their text kept, as browsers do with depth;
- ``MAX_ATTRIBUTES`` attributes per tag;
- tokens and text grown in pieces without copying them again and again;
- a tree walker that does not search for each element among its siblings.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from bleach import html5lib_shim
from bleach._vendor.html5lib.treebuilders import getTreeBuilder

from .budget import UNLIMITED, Budget

#: Open elements beyond this depth are not created (their text is kept).
#: html5lib walks the stack of open elements for most start tags.
MAX_DEPTH = 256

#: Tags are ignored (their text is kept) once html5lib has built this many
#: elements. A long newsletter has a few thousand; html5lib builds some
#: 40,000 a second.
MAX_ELEMENTS = 50_000

#: Attributes of one tag beyond this many are dropped.
MAX_ATTRIBUTES = 100

#: Elements whose content the tokenizer reads as text: always honoured, so
#: that their content stays inside them (to be dropped with them) and
#: html5lib's state stays consistent.
_RAW_TEXT_TAGS = frozenset(
    ("iframe", "noembed", "noframes", "noscript", "plaintext", "script", "style", "textarea",
     "title", "xmp")
)  # fmt: skip

#: Start tags still honoured past MAX_DEPTH: they never hold child elements.
_VOID_TAGS = html5lib_shim.constants.voidElements | {"image"}

# Longer names, comments and doctypes are junk; see _BoundedTokenizer.
_MAX_TOKEN_TEXT = 1024

_START_TAG = html5lib_shim.TAG_TOKEN_TYPE_START
_END_TAG = html5lib_shim.TAG_TOKEN_TYPE_END

# bleach's copy of html5lib's ElementTree builder, adapted below.
_EtreeBuilder = getTreeBuilder("etree")


class BoundedParser(html5lib_shim.BleachHTMLParser):
    """bleach's parser with the bounds above; ``parse`` returns an ElementTree fragment.

    Not thread-safe, like bleach's.
    """

    def __init__(self) -> None:
        # tags=None: the tokenizer leaves every tag to the tree builder, so
        # that the caller can remove unwanted elements whole from the tree.
        super().__init__(
            tags=None,
            strip=True,
            consume_entities=False,
            namespaceHTMLElements=False,
            tree=_TreeBuilder,
        )

    def parse(self, html: str, budget: Budget = UNLIMITED) -> Any:
        """The fragment's tree; raises ``OverBudget`` when ``budget`` is spent."""
        self.budget = budget
        try:
            return self.parseFragment(_prepare_input(html))
        finally:
            self.budget = UNLIMITED

    @property
    def over_budget(self) -> bool:
        """The last input had more than MAX_ELEMENTS elements."""
        return self.tokenizer.over_budget

    def _parse(
        self,
        stream: Any,
        innerHTML: bool = False,
        container: str = "div",
        scripting: bool = True,
        **kwargs: Any,
    ) -> None:
        # As BleachHTMLParser._parse, with the bounded tokenizer.
        self.innerHTMLMode = innerHTML
        self.container = container
        self.scripting = scripting
        self.tokenizer = _BoundedTokenizer(
            stream=stream, consume_entities=self.consume_entities, parser=self, **kwargs
        )
        self.reset()
        try:
            self.mainLoop()
        except html5lib_shim.ReparseException:
            self.reset()
            self.mainLoop()


def _after(prepare: Callable[[Any], None], state_name: str) -> Callable[[Any], Any]:
    """The tokenizer state ``state_name``, calling ``prepare`` first."""
    state = getattr(html5lib_shim.BleachHTMLTokenizer, state_name)

    def prepared_state(tokenizer: Any) -> Any:
        prepare(tokenizer)
        return state(tokenizer)

    return prepared_state


def _shortened(text: str) -> str:
    return text if len(text) <= _MAX_TOKEN_TEXT else text[: _MAX_TOKEN_TEXT // 2]


class _BoundedTokenizer(html5lib_shim.BleachHTMLTokenizer):
    """Keeps the tree within MAX_DEPTH and MAX_ELEMENTS, and the work linear.

    html5lib grows a token's strings a piece at a time, which is quadratic in
    the number of pieces; the states that do so are wrapped below. Names and
    comment or doctype text past ``_MAX_TOKEN_TEXT`` are junk and are cut
    short; long attribute values (a data: URI) are set aside while they grow.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.over_budget = False
        # Pieces of attribute values set aside: attribute ([name, value]) and
        # pieces, by id of the attribute.
        self._set_aside: dict[int, tuple[list[str], list[str]]] = {}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        tree = self.parser.tree
        budget = getattr(self.parser, "budget", UNLIMITED)
        for token in super().__iter__():
            budget.spend()
            if token["type"] in (_START_TAG, _END_TAG) and token["name"] not in _RAW_TEXT_TAGS:
                if tree.elements >= MAX_ELEMENTS:
                    self.over_budget = True
                    continue
                if (
                    token["type"] == _START_TAG
                    and len(tree.openElements) >= MAX_DEPTH
                    and token["name"] not in _VOID_TAGS
                ):
                    continue
            yield token

    def tagOpenState(self) -> bool:
        self._set_aside = {}
        return super().tagOpenState()

    def emitCurrentToken(self) -> None:
        if self._set_aside:
            for attribute, pieces in self._set_aside.values():
                attribute[1] = "".join([*pieces, attribute[1]])
            self._set_aside = {}
        super().emitCurrentToken()

    def _shorten_tag_name(self) -> None:
        self.currentToken["name"] = _shortened(self.currentToken["name"])

    def _shorten_attribute_name(self) -> None:
        attributes = self.currentToken["data"]
        # html5lib compares each new name with all the others.
        if len(attributes) > MAX_ATTRIBUTES:
            del attributes[-2]
        attributes[-1][0] = _shortened(attributes[-1][0])

    def _set_value_aside(self) -> None:
        attribute = self.currentToken["data"][-1]
        if len(attribute[1]) > _MAX_TOKEN_TEXT:
            _, pieces = self._set_aside.setdefault(id(attribute), (attribute, []))
            pieces.append(attribute[1])
            attribute[1] = ""

    def _shorten_comment(self) -> None:
        self.currentToken["data"] = _shortened(self.currentToken["data"])

    def _shorten_doctype(self) -> None:
        for key in ("name", "publicId", "systemId"):
            if self.currentToken.get(key):
                self.currentToken[key] = _shortened(self.currentToken[key])

    tagNameState = _after(_shorten_tag_name, "tagNameState")
    attributeNameState = _after(_shorten_attribute_name, "attributeNameState")
    attributeValueDoubleQuotedState = _after(_set_value_aside, "attributeValueDoubleQuotedState")
    attributeValueSingleQuotedState = _after(_set_value_aside, "attributeValueSingleQuotedState")
    attributeValueUnQuotedState = _after(_set_value_aside, "attributeValueUnQuotedState")
    commentStartState = _after(_shorten_comment, "commentStartState")
    commentStartDashState = _after(_shorten_comment, "commentStartDashState")
    commentState = _after(_shorten_comment, "commentState")
    commentEndDashState = _after(_shorten_comment, "commentEndDashState")
    commentEndState = _after(_shorten_comment, "commentEndState")
    commentEndBangState = _after(_shorten_comment, "commentEndBangState")
    doctypeNameState = _after(_shorten_doctype, "doctypeNameState")
    doctypePublicIdentifierDoubleQuotedState = _after(
        _shorten_doctype, "doctypePublicIdentifierDoubleQuotedState"
    )
    doctypePublicIdentifierSingleQuotedState = _after(
        _shorten_doctype, "doctypePublicIdentifierSingleQuotedState"
    )
    doctypeSystemIdentifierDoubleQuotedState = _after(
        _shorten_doctype, "doctypeSystemIdentifierDoubleQuotedState"
    )
    doctypeSystemIdentifierSingleQuotedState = _after(
        _shorten_doctype, "doctypeSystemIdentifierSingleQuotedState"
    )


class _Element(_EtreeBuilder.elementClass):
    """html5lib's etree node, with text gathered before it is stored.

    html5lib appends each piece of text to a string, which is quadratic when
    text arrives in many pieces (character references do, and text moved out
    of tables). Pieces wait in a list until the element's children change or
    the tree is complete. html5lib also looks children up from the first,
    while a table's misplaced content goes before its last child, again and
    again: lookups here start from the last.
    """

    def __init__(
        self, name: str, namespace: str | None = None, gathered: list[_Element] | None = None
    ) -> None:
        super().__init__(name, namespace)
        self._pending: list[str] = []
        # The child the waiting text goes before; None: at the end.
        self._pending_before: Any = None
        # The tree builder's list of elements with waiting text.
        self._gathered = gathered

    def flush(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending = []
        if self._pending_before is None:
            super().insertText(text)
            return
        index = self._index(self._pending_before)
        self._pending_before = None
        if index:
            previous = self._element[index - 1]
            previous.tail = (previous.tail or "") + text
        else:
            self._element.text = (self._element.text or "") + text

    def insertText(self, data: str, insertBefore: Any = None) -> None:
        if self._pending and insertBefore is not self._pending_before:
            self.flush()
        if not self._pending:
            self._gathered.append(self)
            self._pending_before = insertBefore
        self._pending.append(data)

    def hasContent(self) -> bool:
        return bool(self._pending) or super().hasContent()

    def cloneNode(self) -> _Element:
        clone = super().cloneNode()
        clone._gathered = self._gathered
        return clone

    def appendChild(self, node: Any) -> None:
        self.flush()
        super().appendChild(node)

    def insertBefore(self, node: Any, refNode: Any) -> None:
        self.flush()
        # As html5lib's, which leaves _childNodes alone too.
        self._element.insert(self._index(refNode), node._element)
        node.parent = self

    def removeChild(self, node: Any) -> None:
        self.flush()
        super().removeChild(node)

    def reparentChildren(self, newParent: Any) -> None:
        self.flush()
        if isinstance(newParent, _Element):
            newParent.flush()
        super().reparentChildren(newParent)

    def _index(self, child: Any) -> int:
        element = self._element
        for index in range(len(element) - 1, -1, -1):
            if element[index] is child._element:
                return index
        raise ValueError("not a child")


class _TreeBuilder(_EtreeBuilder):
    """Counts the elements it makes, and stores gathered text at the end."""

    def reset(self) -> None:
        self.gathered: list[_Element] = []
        self.elementClass = functools.partial(_Element, gathered=self.gathered)
        self.elements = 0
        super().reset()

    def insertElementNormal(self, token: dict[str, Any]) -> Any:
        self.elements += 1
        return super().insertElementNormal(token)

    def insertElementTable(self, token: dict[str, Any]) -> Any:
        self.elements += 1
        return super().insertElementTable(token)

    def getFragment(self) -> Any:
        for element in self.gathered:
            element.flush()
        return super().getFragment()


class TreeWalker(html5lib_shim.getTreeWalker("etree")):
    """html5lib's etree walker in linear time.

    html5lib's own looks an element up among its siblings each time it
    climbs back to it, which is quadratic in the width of the tree.
    """

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self._text(self.tree.text)
        stack: list[tuple[Any, Iterator[Any]]] = [(None, iter(self.tree))]
        while stack:
            parent, children = stack[-1]
            element = next(children, None)
            if element is None:
                stack.pop()
                if parent is not None:
                    yield self.endTag(None, parent.tag)
                    yield from self._text(parent.tail)
                continue
            if not isinstance(element.tag, str):
                yield self.comment(element.text)
                yield from self._text(element.tail)
                continue
            # SVG and MathML, where names have namespaces, are gone by now
            # (see html.py); HTML names have none.
            attributes = {(None, name): value for name, value in element.attrib.items()}
            if element.tag in html5lib_shim.constants.voidElements:
                yield from self.emptyTag(None, element.tag, attributes)
                yield from self._text(element.tail)
                continue
            yield self.startTag(None, element.tag, attributes)
            text = element.text
            if text and text[0] == "\n" and element.tag == "pre":
                # The parser drops a newline right after <pre> (and after
                # <listing> and <textarea>, which never reach the output).
                text = "\n" + text
            yield from self._text(text)
            stack.append((element, iter(element)))

    def _text(self, text: str | None) -> Iterator[dict[str, Any]]:
        if text:
            yield from self.text(text)


# bleach's handling of numeric character references is quadratic in their
# digits and fails past 4,300 of them. Leading zeros say nothing, and with
# more than 8 hex or 9 decimal digits a reference is out of range whatever
# follows, so shortening them keeps their meaning.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_NUMERIC_REFERENCE_RE = re.compile(r"&#(?:([xX])(0*)([0-9a-fA-F]*)|(0*)([0-9]*))")


def _shorten_reference(match: re.Match[str]) -> str:
    x, hex_zeros, hex_digits, zeros, digits = match.groups()
    if x:
        return f"&#{x}{hex_digits[:8] or hex_zeros[:1]}"
    return f"&#{digits[:9] or zeros[:1]}"


def _prepare_input(html: str) -> str:
    # NUL characters are dropped from text by browsers, and by html5lib one
    # parse error at a time. Lone surrogates (from undecodable bytes) could
    # not be encoded in the response.
    html = _SURROGATE_RE.sub("\ufffd", html.replace("\x00", ""))
    return _NUMERIC_REFERENCE_RE.sub(_shorten_reference, html)
