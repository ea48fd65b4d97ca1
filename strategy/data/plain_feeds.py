"""Plain RSS 2.0 and Atom feeds read with xml.etree, item for item as feedparser reads them.

feedparser is general and forgiving, and slow: about 0.15 ms an item in plain Python, so a feed of 2,000 items
costs a keeper cycle some 300 ms, where xml.etree reads the same bytes in a few. `plain_entries` reads a feed
only when every value it gives is one feedparser would give unchanged or by a rule written here; for anything
else it returns None, and the caller parses the feed with feedparser as before:

- the document: UTF-8 (declared or not), no byte-order mark, no DOCTYPE (so no entity can expand), well-formed,
  no `base`/`xml:base` attribute (feedparser resolves links against it); `<rss version="2.x">` with one
  `<channel>` of items, or an Atom 1.0 `<feed>` of entries; no item or entry elsewhere;
- an item: only `title`, `link`, `description`, `pubDate`, and `guid`, `category`, `author`, `comments`,
  `enclosure` (ignored: feedparser takes nothing from them that is read here once the item has a `link`),
  each at most once, none with child elements, no attributes on the four that are read;
  an RSS title without `<` or an entity-like `&name;` (feedparser would take it for HTML), a description
  without `<`, `>`, `&` or a carriage return (feedparser runs those through its HTML sanitiser);
- an entry: only `title` and `summary` (of type text), `link`, `id`, `published`, `updated`, `author`,
  `contributor`, `category`, with at least one alternate HTML link (the last is the entry's link; without one
  feedparser takes the id);
- dates: RFC 822 (`Sat, 01 Jun 2024 08:00:00 GMT`, or `+hhmm`) in RSS, RFC 3339 (`2024-06-01T09:00:00Z`, or
  `+hh:mm`) in Atom, each computed as feedparser's date handlers compute it;
- text: stripped, then feedparser's repair of text taken for Latin-1 (`_feedparser_text`); no character in
  U+0080-U+009F (feedparser maps those to Windows-1252).

Tests compare the entries with feedparser's item by item, on the recorded feeds, the tests' feeds, the devnet's
and generated ones.
"""

from __future__ import annotations

import contextlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import overload

ATOM = "{http://www.w3.org/2005/Atom}"
DATES_MEMO = 1 << 14  # dates read again by the next cycle's fetch of the same feed
_DECLARATION = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_RSS_READ = ("title", "link", "description", "pubDate")
_RSS_CHILDREN = frozenset({*_RSS_READ, "guid", "category", "author", "comments", "enclosure"})
_ATOM_TEXT = frozenset({"title", "summary"})
_ATOM_DATES = frozenset({"published", "updated"})
_ATOM_IGNORED = frozenset({"id", "category"})
_ATOM_PEOPLE = frozenset({"author", "contributor"})
_PERSON_PARTS = frozenset({f"{ATOM}name", f"{ATOM}email", f"{ATOM}uri"})
_ENTRY_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]", re.IGNORECASE)
_LOOKS_LIKE_HTML = re.compile(r"<|&#?\w+;")  # whatever feedparser's looks_like_html could take for HTML
_HTML_SPECIAL = re.compile(r"[<>&\r]")
_CP1252_RANGE = re.compile("[\x80-\x9f]")
_UNIX_EPOCH, _SECOND = datetime(1970, 1, 1), timedelta(seconds=1)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RFC822 = re.compile(r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) (" + "|".join(_MONTHS)
                     + r") (\d{4}) (\d{2}):(\d{2}):(\d{2}) (?:GMT|UT|Z|([+-])(\d{2})(\d{2}))")
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?(?:Z|([+-])(\d{2}):(\d{2}))")


class _NotPlain(Exception):
    """The feed holds something only feedparser reads as feedparser does."""


@dataclass(frozen=True)
class PlainEntry:
    """What `strategy.data.news` takes from a feedparser entry: None where the element is missing."""

    title: str | None
    link: str | None
    summary: str | None
    time: int | None  # Unix seconds of the published (else updated) date


def plain_entries(content: bytes, counted: int | None = None) -> list[PlainEntry] | None:
    """The entries of a plain RSS 2.0 or Atom feed (see the module docstring), in document order; None for any
    other document. `counted`: its `entry_count`, when the caller has it."""
    read: Callable[[ET.Element], PlainEntry]
    try:
        root = _plain_document(content)
        if root.tag == "rss" and root.get("version", "").startswith("2."):
            [channel] = _only(root, "channel")
            entries, read = channel.findall("item"), _rss_entry
        elif root.tag == f"{ATOM}feed":
            entries, read = root.findall(f"{ATOM}entry"), _atom_entry
        else:
            return None
        # feedparser takes any element named item or entry, in any case and namespace, anywhere, for one
        if (entry_count(content) if counted is None else counted) != len(entries):
            return None
        return [read(entry) for entry in entries]
    except _NotPlain:
        return None


def entry_count(content: bytes) -> int:
    """How many elements named item or entry (any case, any namespace) the document holds, counted in its bytes
    without parsing it: at least as many as feedparser would read."""
    return len(_ENTRY_TAG.findall(content))


def _plain_document(content: bytes) -> ET.Element:
    if content.startswith((b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")) or b"<!DOCTYPE" in content:
        raise _NotPlain
    declared = _DECLARATION.match(content)
    if declared is not None and declared.group(1).lower() != b"utf-8":
        raise _NotPlain
    try:
        root = ET.fromstring(content)
    except ET.ParseError:
        raise _NotPlain from None
    if re.search(rb"base\s*=", content, re.IGNORECASE):  # rare: only then is every attribute looked at
        for element in root.iter():
            if any(_local(name).lower() == "base" for name in element.attrib):
                raise _NotPlain
    return root


def _rss_entry(item: ET.Element) -> PlainEntry:
    if item.attrib:
        raise _NotPlain
    texts: dict[str, str] = {}
    for child in item:
        tag = child.tag
        if len(child) or tag in texts or tag not in _RSS_CHILDREN or (child.attrib and tag in _RSS_READ):
            raise _NotPlain
        texts[tag] = (child.text or "").strip()
    if "link" not in texts and "guid" in texts:
        raise _NotPlain  # feedparser takes a permalink guid for the link
    title, link, description = texts.get("title"), texts.get("link"), texts.get("description")
    if title is not None and _LOOKS_LIKE_HTML.search(title):
        raise _NotPlain
    if description is not None and _HTML_SPECIAL.search(description):
        raise _NotPlain
    if link is not None:
        link = _feedparser_text(link)
        if "&" in link:  # feedparser's repair of query strings taken for entities (`?a=1&b=2` read as `&b;`)
            link = re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", link.replace("&amp;", "&"))
    return PlainEntry(title=_feedparser_text(title), link=link, summary=_feedparser_text(description),
                      time=_rfc822_time(texts.get("pubDate")))


def _atom_entry(entry: ET.Element) -> PlainEntry:
    if set(entry.attrib) - {"{http://www.w3.org/XML/1998/namespace}lang"}:
        raise _NotPlain
    texts: dict[str, str] = {}
    dates: dict[str, int | None] = {}
    link = None
    for child in entry:
        name = child.tag.removeprefix(ATOM) if child.tag.startswith(ATOM) else None
        if name in _ATOM_TEXT | _ATOM_DATES and (len(child) or name in texts or name in dates):
            raise _NotPlain
        if name in _ATOM_TEXT:
            if child.get("type", "text").lower() != "text":
                raise _NotPlain  # html and xhtml go through feedparser's sanitiser
            texts[name] = _feedparser_text(_stripped(child))
        elif name in _ATOM_DATES:
            dates[name] = _rfc3339_time(_stripped(child))
        elif name == "link":
            href = _alternate_href(child)
            link = link if href is None else href
        elif name in _ATOM_PEOPLE:
            if any(len(part) or part.tag not in _PERSON_PARTS for part in child):
                raise _NotPlain
        elif name not in _ATOM_IGNORED or len(child):
            raise _NotPlain
    if link is None:
        raise _NotPlain  # feedparser takes the id for the link
    time = dates.get("published")
    return PlainEntry(title=texts.get("title"), link=link, summary=texts.get("summary"),
                      time=time if time is not None else dates.get("updated"))


def _alternate_href(link: ET.Element) -> str | None:
    """The href of an alternate HTML link, as feedparser takes it for the entry's link; None for another link."""
    if len(link) or "href" not in link.attrib or {"url", "uri"} & set(link.attrib):
        raise _NotPlain
    rel = link.get("rel", "alternate").lower()
    kind = link.get("type", "application/atom+xml" if rel == "self" else "text/html").lower()
    kind = {"html": "text/html", "xhtml": "application/xhtml+xml"}.get(kind, kind)
    return link.get("href") if rel == "alternate" and kind in ("text/html", "application/xhtml+xml") else None


def _only(parent: ET.Element, tag: str) -> list[ET.Element]:
    children = parent.findall(tag)
    if len(children) != 1:
        raise _NotPlain
    return children


def _stripped(element: ET.Element) -> str:
    return (element.text or "").strip()


@overload  # a text in, a text out: only a missing element reads as None
def _feedparser_text(text: str) -> str: ...
@overload
def _feedparser_text(text: str | None) -> str | None: ...
def _feedparser_text(text: str | None) -> str | None:
    """feedparser's last steps on a text: what reads as UTF-8 taken for Latin-1 is decoded again; a character it
    would map from Windows-1252 is left to it."""
    if text is None or text.isascii():
        return text
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    if _CP1252_RANGE.search(text):
        raise _NotPlain
    return text


@lru_cache(maxsize=DATES_MEMO)
def _rfc822_time(text: str | None) -> int | None:
    """feedparser's RFC 822 handler on the common form; None without a date."""
    if not text:
        return None
    match = _RFC822.fullmatch(text)
    if match is None:
        raise _NotPlain
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    return _utc_seconds(int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second),
                        sign, zone_hours, zone_minutes)


@lru_cache(maxsize=DATES_MEMO)
def _rfc3339_time(text: str | None) -> int | None:
    """feedparser's W3C date handler on RFC 3339 times (a fraction of a second dropped); None without a date."""
    if not text:
        return None
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise _NotPlain
    year, month, day, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    return _utc_seconds(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        sign, zone_hours, zone_minutes)


def _utc_seconds(year: int, month: int, day: int, hour: int, minute: int, second: int, sign: str | None,
                 zone_hours: str | None, zone_minutes: str | None) -> int:
    # The same seconds and the same errors as calendar.timegm of the moment's UTC time tuple, in a fifth of the
    # time: the devnet's feed is dated anew each market day, so none of its dates is in the memo.
    try:
        moment = datetime(year, month, day, hour, minute, second)
        if sign is not None:
            offset = timedelta(hours=int(zone_hours or 0), minutes=int(zone_minutes or 0))
            moment = moment - offset if sign == "+" else moment + offset
    except (ValueError, OverflowError):
        raise _NotPlain from None  # feedparser keeps such a date as text
    return (moment - _UNIX_EPOCH) // _SECOND


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]
