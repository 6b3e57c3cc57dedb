"""Where the selected view's SORT, THREAD and PREVIEW get their fields: the view's own
`FieldSource` when it has one (the folder index: `view.field_source`), else a `ParsingSource`,
which reads the header of every message it is asked about.

The parsing source is correct and slow for big folders (a file read and a header parse per
message and command: about 60 us a message here); it keeps nothing but the previews FETCH
PREVIEW computed, so that a later PREVIEW (LAZY) has them, as Dovecot's cache has them once
fetched (at most `PREVIEW_CACHE` per view, then it starts again).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from mailstore.errors import NotFound
from mra.imap import mime
from mra.imap.preview import preview_text
from mra.imap.sortfields import FieldSource, SortFields, fields_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mra.imap.selected import SelectedView

__all__ = ["PREVIEW_CACHE", "ParsingSource", "fetch_preview", "known_preview", "source_for"]

PREVIEW_CACHE = 1_000  # previews a view keeps (200 characters each at most): a screenful or ten


class ParsingSource:
    """The fields of a view's messages, read from their files each time."""

    def __init__(self, view: SelectedView) -> None:
        self._view = weakref.ref(view)
        self._previews: dict[int, str] = {}

    def fields(self, uids: Sequence[int]) -> list[SortFields]:
        view = self._view()
        if view is None:
            return []
        box = view.box
        out: list[SortFields] = []
        previews = self._previews
        with box.reading():
            for uid in uids:
                msg = view.message(uid)
                if msg is None:
                    continue
                try:
                    header = box.read_header(uid)
                    arrival = box.internaldate(msg)
                    size = msg.vsize
                    if size is None:
                        size = box.message_vsize(msg)
                except NotFound:
                    continue  # expunged by another process while we read
                f = fields_of(uid, arrival, size, header, limits=view.mime_limits)
                known = previews.get(uid)
                out.append(f if known is None else replace(f, preview=known))
        return out

    def remember_previews(self, previews: Mapping[int, str]) -> None:
        if len(self._previews) + len(previews) > PREVIEW_CACHE:
            self._previews.clear()
        self._previews.update(previews)

    def preview(self, uid: int) -> str | None:
        """A preview computed before, without reading the message (what LAZY may answer)."""
        return self._previews.get(uid)


_lock = threading.Lock()


def source_for(view: SelectedView) -> FieldSource:
    """The view's field source. The folder index gives the view a `field_source`; until it
    does, each view gets a parsing source of its own."""
    own: FieldSource | None = getattr(view, "field_source", None)
    if own is not None:
        return own
    with _lock:
        source = view.parsed_fields
        if not isinstance(source, ParsingSource):
            source = view.parsed_fields = ParsingSource(view)
        return source


def fetch_preview(
    view: SelectedView, uid: int, content: Callable[[], mime.Part], lazy: bool
) -> str | None:
    """FETCH PREVIEW of one message (RFC 8970): the source's, else made from the message
    (`content()`, parsed once for the whole FETCH item list) and handed to the source to
    keep; with LAZY only what the source has (None: NIL, "the client may ask again without
    LAZY"), as Dovecot answers from its cache alone."""
    source = source_for(view)
    known = known_preview(source, uid)
    if known is not None or lazy:
        return known
    text = preview_text(content())
    source.remember_previews({uid: text})
    return text


def known_preview(source: FieldSource, uid: int) -> str | None:
    """The preview the source has of a message, without computing one."""
    if isinstance(source, ParsingSource):
        return source.preview(uid)
    found = source.fields([uid])
    return found[0].preview if found else None
