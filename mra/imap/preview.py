"""The preview text of FETCH PREVIEW (RFC 8970), as Dovecot 2.3 makes it, so that both servers
show the same line under a message in a client's list.

RFC 8970 leaves the algorithm to the server ("the first text part, with HTML stripped, as a
hint of what the message says", at most 256 characters). Dovecot's (index-mail.c
`index_mail_find_first_text_mime_part`, lib-mail/message-snippet.c, mail-html2text.c):

1. The part: the message itself when it is text/* (or has no Content-Type); in a
   multipart/alternative its first text/plain child, else its text/html one, else another
   text/* one; in any other multipart the first child, depth first, that has one of these.
   Nothing else (an image, a message/rfc822) has a preview: "".
2. Its body, transfer encoding and charset removed (an unknown transfer encoding: nothing);
   text/html and application/xhtml+xml turned into text by `html_to_text` (tags are a blank,
   entities are their character, scripts, styles and comments are nothing).
3. The first 200 characters of it, every run of blanks and line ends one space, none at
   either end; lines that start with ">" are quoted text, set aside, and used (after a ">")
   only when nothing else is there.

Linear in the part and stopping early: the text is read a piece at a time and only until the
200 characters are there, and a quoted line once its budget is spent is skipped whole.
"""

from __future__ import annotations

import html.entities
import re
from collections.abc import Iterator

from mra.imap import mime

__all__ = ["MAX_CHARS", "html_to_text", "preview_text", "snippet"]

MAX_CHARS = 200
"""Dovecot's BODY_SNIPPET_MAX_CHARS; RFC 8970 allows up to 256."""
PIECE = 16 * 1024  # characters of text handed to the snippet at a time


def preview_text(root: mime.Part) -> str:
    part = first_text_part(root)
    if part is None:
        return ""
    data = part.data
    encoding = (data.encoding or b"7bit").lower()
    if encoding not in (b"7bit", b"8bit", b"binary", b"quoted-printable", b"base64"):
        return ""  # message-decoder.c: a body it cannot decode is skipped
    if data.content_type is not None and data.content_subtype is None:
        return ""  # a broken Content-Type: message-decoder.c sees "text", not "text/..."
    text = mime.part_text(part)
    ctype = b"/".join((data.content_type or b"text", data.content_subtype or b"plain")).lower()
    if ctype in (b"text/html", b"application/xhtml+xml"):
        return snippet(html_to_text(text))
    if not ctype.startswith(b"text/"):
        return ""
    return snippet(text[i : i + PIECE] for i in range(0, len(text), PIECE))


def first_text_part(root: mime.Part) -> mime.Part | None:
    """The part a preview is made of (step 1 of the module note), found without recursion."""
    todo = [root]
    while todo:
        part = todo.pop()
        data = part.data
        ctype = (data.content_type or b"").lower()
        if data.content_type is None or ctype == b"text":
            return part
        if ctype != b"multipart":
            continue
        if (data.content_subtype or b"").lower() == b"alternative":
            html_part = text_part = None
            for child in part.children:
                cdata = child.data
                if cdata.content_type is None or cdata.content_type.lower() == b"text":
                    sub = (cdata.content_subtype or b"plain").lower()
                    if sub == b"plain":
                        return child
                    if sub == b"html":
                        html_part = child
                    else:
                        text_part = child
            found = html_part or text_part
            if found is not None:
                return found
            continue
        todo.extend(reversed(part.children))
    return None


# ---------------------------------------------------------------------------------------------
# The snippet (message-snippet.c)

_SPACE = " \t\n\v\f\r"  # C isspace()
_TOKEN = re.compile(r"[ \t\n\v\f\r]+|[\0\ufeff]+|[^ \t\n\v\f\r\0\ufeff]+")


class _Target:
    __slots__ = ("left", "text")

    def __init__(self, left: int) -> None:
        self.text: list[str] = []
        self.left = left


def snippet(pieces: Iterator[str] | str, max_chars: int = MAX_CHARS) -> str:
    """The first `max_chars` characters of plain text, as message-snippet.c picks them (see
    the module note). `pieces` is the text, or pieces of it read one after another."""
    if isinstance(pieces, str):
        pieces = iter((pieces,))
    main = _Target(max_chars)
    quoted = _Target(max_chars - 1)  # room for the ">"
    state = "newline"
    target = main
    add_space = False
    for piece in pieces:
        i = 0
        n = len(piece)
        while i < n:
            if state == "quoted" and quoted.left == 0:
                # Nothing more fits: the rest of the line only says "a blank follows".
                end = piece.find("\n", i)
                if end < 0:
                    add_space = add_space or any(c in _SPACE for c in piece[i:])
                    i = n
                    break
                add_space = True
                state = "newline"
                i = end + 1
                continue
            m = _TOKEN.match(piece, i)
            assert m is not None
            token = m.group()
            i = m.end()
            if state == "newline":
                if token[0] == ">":
                    state, target = "quoted", quoted
                    token = token[1:]
                    if not token:
                        continue
                else:
                    state, target = "normal", main
            first = token[0]
            if first in _SPACE:
                # Each character in turn: a blank with text before it asks for a space; a
                # line end starts a new line, whose first character (here another blank)
                # makes it a normal one.
                if target.text:
                    add_space = True
                newline = token.rfind("\n")
                if newline >= 0:
                    if newline + 1 < len(token):
                        state, target = "normal", main
                        if main.text:
                            add_space = True
                    else:
                        state = "newline"
                        if newline > 0 and main.text and token.find("\n") < newline:
                            add_space = True
                continue
            if first in "\0\ufeff":
                continue  # NULs and byte order marks take no room
            for c in token:
                if target.left == 0:
                    break
                target.left -= 1
                if add_space:
                    if target.left == 0:
                        break  # no space at the end, and no room for the character
                    target.text.append(" ")
                    add_space = False
                    target.left -= 1
                target.text.append(c)
                if main.left == 0:
                    break
            if main.left == 0:
                break
        if main.left == 0:
            break
    if main.text:
        return "".join(main.text).lstrip(_SPACE)
    if quoted.text:
        return ">" + "".join(quoted.text).lstrip(_SPACE)
    return ""


# ---------------------------------------------------------------------------------------------
# HTML to text (mail-html2text.c, without its option to skip quoted text)

_ENTITIES: dict[str, int] = dict(html.entities.name2codepoint)
_ENTITIES.update({"apos": 0x27, "lang": 0x27E8, "rang": 0x27E9})  # Dovecot's table
_HTML_BLANK = " \t\r\n"
_TEXT_STOP = re.compile(r"[<&]")
_TAG_STOP = re.compile(r"[\"'>]")
_DQUOTED_END = re.compile(r'(?:[^"\\]|\\.)*"', re.S)
_SQUOTED_END = re.compile(r"(?:[^'\\]|\\.)*'", re.S)
_COMMENT_DASHES = re.compile(r"--")
_SCRIPT_END = re.compile(r"</script>", re.I)
_STYLE_END = re.compile(r"</style>", re.I)
_CDATA_END = re.compile(r"]]>")
_HEX = re.compile(r"x[0-9A-Fa-f]+")
_DECIMAL = re.compile(r"[0-9]+")


def html_to_text(markup: str) -> Iterator[str]:
    """The text of HTML, a piece at a time, as mail-html2text.c makes it: tags become a
    blank (none after a blank or a line end), entities their character (unknown ones
    nothing, a broken one loses its "&"), comments, scripts and styles nothing, CDATA its
    text; inside a blockquote each tag starts a new line with ">", so that the snippet
    treats it as quoted text. What is cut off at the end (a tag that does not end) is
    nothing."""
    out: list[str] = []
    size = 0
    i = 0
    n = len(markup)
    quote_level = 0
    add_newline = False

    def add_space() -> None:
        if out and out[-1] and out[-1][-1] not in " \n":
            out.append(" ")

    while i < n:
        m = _TEXT_STOP.search(markup, i)
        end = n if m is None else m.start()
        if end > i:
            out.append(markup[i:end])
            size += end - i
        if m is None:
            break
        i = end + 1
        if markup[end] == "&":
            i = _entity(markup, i, out)
        else:
            i, kind, quote_level, add_newline = _tag_name(markup, i, quote_level, add_newline)
            if kind == "tag":
                i = _skip_tag(markup, i)
                if i < 0:
                    break
                if quote_level > 0:
                    out.append("\n>")
                elif add_newline:
                    out.append("\n")
                add_newline = False
                add_space()
            elif kind == "comment":
                i = _skip_comment(markup, i)
            elif kind in ("script", "style"):
                m = (_SCRIPT_END if kind == "script" else _STYLE_END).search(markup, i)
                if m is None:
                    break
                add_space()
                i = m.end()
            elif kind == "cdata":
                m = _CDATA_END.search(markup, i)
                if m is None:
                    if i < n:
                        out.append(markup[i:])  # CDATA text is copied as it comes
                    break
                if m.start() > i:
                    out.append(markup[i : m.start()])
                i = m.end()
            else:  # the tag name runs to the end: more input would be needed
                break
        if size >= PIECE:
            text = "".join(out)
            out = [text[-1:]]  # add_space() looks at the last character written
            size = 0
            yield text[:-1]
    yield "".join(out)


def _tag_name(
    markup: str, i: int, quote_level: int, add_newline: bool
) -> tuple[int, str, int, bool]:
    """After a "<": what it opens (parse_tag_name()), and where its content starts."""
    rest = markup[i : i + 12]
    if rest.startswith("!--"):
        return i + 3, "comment", quote_level, add_newline
    low = rest.lower()
    if low.startswith("script") and len(rest) >= 7 and (rest[6] in _HTML_BLANK or rest[6] == ">"):
        return i + 7, "script", quote_level, add_newline
    if low.startswith("style") and len(rest) >= 6 and (rest[5] in _HTML_BLANK or rest[5] == ">"):
        return i + 6, "style", quote_level, add_newline
    if low.startswith("![cdata["):
        return i + 8, "cdata", quote_level, add_newline
    if (
        low.startswith("blockquote")
        and len(rest) >= 11
        and (rest[10] in _HTML_BLANK or rest[10] == ">")
    ):
        return i, "tag", quote_level + 1, add_newline
    if quote_level > 0 and low.startswith("/blockquote>"):
        return i, "tag", quote_level - 1, True
    if len(rest) < 12 and not any(c in _HTML_BLANK or c == ">" for c in rest):
        return i, "more", quote_level, add_newline
    return i, "tag", quote_level, add_newline


def _skip_tag(markup: str, i: int) -> int:
    """Past the ">" that ends a tag, quoted attribute values (with their escapes) skipped;
    -1 when it does not end."""
    n = len(markup)
    while i < n:
        m = _TAG_STOP.search(markup, i)
        if m is None:
            return -1
        c = m.group()
        if c == ">":
            return m.end()
        quoted = (_DQUOTED_END if c == '"' else _SQUOTED_END).match(markup, m.end())
        if quoted is None:
            return -1
        i = quoted.end()
    return -1


def _skip_comment(markup: str, i: int) -> int:
    """Past "-->" (blanks allowed between "--" and ">"); the end when there is none."""
    n = len(markup)
    while True:
        m = _COMMENT_DASHES.search(markup, i)
        if m is None:
            return n
        j = m.end()
        while j < n and markup[j] in _HTML_BLANK:
            j += 1
        if j >= n:
            return n
        if markup[j] == ">":
            return j + 1
        i = j + 1  # any other character: back in the comment, that character read


def _entity(markup: str, i: int, out: list[str]) -> int:
    """After a "&": its character appended (parse_entity()); where the text goes on."""
    end = i
    n = len(markup)
    while end < n and end - i < 10:
        c = markup[end]
        if c in _HTML_BLANK:
            return i  # broken: the "&" alone is lost
        if c == ";":
            break
        end += 1
    else:
        return i if end < n else n  # too long (broken), or cut off at the end
    name = markup[i:end]
    code = _ENTITIES.get(name)
    if code is None and name.startswith("#"):
        # &#nnn; or &#xhhh; ("x" in lower case only), a valid code point
        if _HEX.fullmatch(name, 1) is not None:
            code = int(name[2:], 16)
        elif _DECIMAL.fullmatch(name, 1) is not None:
            code = int(name[1:])
        if code is not None and (code >= 0x110000 or 0xD800 <= code <= 0xDFFF):
            code = None
    if code is not None:
        out.append(chr(code))
    return end + 1
