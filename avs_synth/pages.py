"""Static HTML pages of pictures with their sound: one card per sample, filterable.

``avs-synth inspect --html`` (triplets of a build) and ``avs-train evaluate`` (best and worst
predicted frames per category) write their pages with :class:`PageWriter`; what goes on a card is
decided by them, how a page is written is decided here, once.

A page is a folder: ``index.html`` and ``media/`` (numbered JPEG pictures and WAV audio, which
every browser plays). It is self-contained: relative paths only, no script, style or font from
the network, and a Content-Security-Policy that lets the page load nothing but its own files.
Data never becomes markup or code: every text is HTML-escaped, filter values live in ``data-``
attributes read by one fixed script, and links are kept only when they are ``http(s)`` URLs.

Writing is safe to interrupt: media go to a temporary folder; the old ``index.html`` is removed
before the new media replace the old, and the new ``index.html`` is written last, atomically, so a
folder never holds a page that looks complete but is not. A folder whose ``index.html`` was not
written by this module is refused, not overwritten.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import shutil
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image

__all__ = ["GENERATOR", "PageFilter", "PageItem", "PageWriter"]

GENERATOR = "avs-synth pages"
"""The ``<meta name="generator">`` of every page (how a page of ours is recognised)."""
INDEX = "index.html"
MEDIA = "media"
_FILTER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_SAFE_URL = re.compile(r"^https?://[^\s<>\"']+$")


@dataclass(frozen=True)
class PageFilter:
    """A drop-down that shows only the cards with one value of a field.

    Args:
        name: the field (``split``, ``category``...): lower-case letters, digits and ``-``.
        label: the text beside the drop-down.
    """

    name: str
    label: str

    def __post_init__(self) -> None:
        if not _FILTER_NAME.match(self.name):
            raise ValueError(f"filter name {self.name!r} must match {_FILTER_NAME.pattern}")


@dataclass(frozen=True)
class PageItem:
    """One card.

    Args:
        title: the card's heading.
        picture: the picture with its mask (a path returned by :meth:`PageWriter.picture`).
        plain_picture: the picture alone, shown while the pointer is over the card's picture.
        audio: the sound (a path returned by :meth:`PageWriter.audio`), or None.
        facts: ``(label, text)`` rows under the picture.
        links: ``(text, url)``; URLs that are not ``http(s)`` are shown as text, not linked.
        filters: ``(filter name, value)`` of the page's filters.
        badge: a word beside the title (``negative``, ``worst``).
    """

    title: str
    picture: str
    plain_picture: str | None = None
    audio: str | None = None
    facts: tuple[tuple[str, str], ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    filters: tuple[tuple[str, str], ...] = ()
    badge: str | None = None


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f2;color:#222}
header{padding:12px 20px;background:#fff;border-bottom:1px solid #ddd;position:sticky;top:0;
z-index:1}
h1{font-size:20px;margin:0 0 4px}
.summary{margin:0;color:#444;white-space:pre-line}
.controls{margin-top:8px;display:flex;gap:16px;flex-wrap:wrap;align-items:center}
.legend{color:#555}
.swatch{display:inline-block;width:12px;height:12px;vertical-align:middle;margin:0 3px 0 8px}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:14px;
padding:16px 20px}
.card{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;overflow:hidden}
.card[hidden]{display:none}
.pic{position:relative;background:#000;line-height:0}
.pic img{width:100%;height:auto}
.pic .plain{position:absolute;left:0;top:0;opacity:0}
.pic:hover .plain{opacity:1}
figcaption{padding:8px 10px}
h2{font-size:15px;margin:0 0 6px;word-break:break-word}
.badge{font-size:12px;background:#333;color:#fff;border-radius:3px;padding:1px 5px;
margin-left:6px}
audio{width:100%;height:32px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:1px 8px;margin:6px 0 0;font-size:12px}
dt{color:#777}
dd{margin:0;word-break:break-word}
.links{font-size:12px;margin:4px 0 0}
"""

_SCRIPT = """"use strict";
(function () {
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var count = document.getElementById("count");
  function apply() {
    var shown = 0;
    cards.forEach(function (card) {
      var ok = selects.every(function (s) {
        return !s.value || card.getAttribute("data-" + s.getAttribute("data-filter")) === s.value;
      });
      card.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + cards.length + " shown";
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  apply();
})();
"""


def _script_hash() -> str:
    digest = hashlib.sha256(_SCRIPT.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Mono float samples in [-1, 1] → a 16-bit PCM WAV file."""
    pcm = (np.clip(np.nan_to_num(np.asarray(samples, np.float32)), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(int(sample_rate))
        handle.writeframes(pcm.tobytes())


class PageWriter:
    """Writes one page into a folder; use as a context manager (the page is written on a clean
    exit, and nothing of the old page is touched when the block fails).

    Args:
        folder: the page's folder (created; may hold other files, which are left alone).
        title: the page's title.
        filters: the drop-downs, in order.
        summary: lines under the title (the build, the metrics...).
        legend: ``(colour name, meaning)`` of the overlay colours.

    Raises:
        FileExistsError: ``folder/index.html`` exists and was not written by this module.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        title: str,
        filters: Sequence[PageFilter] = (),
        summary: Sequence[str] = (),
        legend: Sequence[tuple[tuple[int, int, int], str]] = (),
    ) -> None:
        self.folder = Path(folder)
        self.title = title
        self.filters = tuple(filters)
        self.summary = tuple(summary)
        self.legend = tuple(legend)
        self.items: list[PageItem] = []
        index = self.folder / INDEX
        if index.exists() and not _is_ours(index):
            raise FileExistsError(
                f"{index} exists and was not written by avs-synth: choose another folder"
            )
        self._media: Path | None = None
        self._count = 0

    def __enter__(self) -> PageWriter:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._media = Path(tempfile.mkdtemp(prefix=f".{MEDIA}.tmp-", dir=self.folder))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._media is not None
        if kind is not None:
            shutil.rmtree(self._media, ignore_errors=True)
            return
        self._publish(self._media)

    # -- media --------------------------------------------------------------------------------
    def _name(self, suffix: str) -> tuple[Path, str]:
        if self._media is None:
            raise RuntimeError("use PageWriter as a context manager")
        self._count += 1
        name = f"{self._count:05d}{suffix}"
        return self._media / name, f"{MEDIA}/{name}"

    def picture(self, image: Image.Image, *, quality: int = 90) -> str:
        """Save a picture for the page; returns its path relative to the page."""
        path, relative = self._name(".jpg")
        image.convert("RGB").save(path, format="JPEG", quality=quality)
        return relative

    def audio(self, samples: np.ndarray, sample_rate: int) -> str:
        """Save mono float samples as WAV for the page; returns its path relative to the page."""
        path, relative = self._name(".wav")
        write_wav(path, samples, sample_rate)
        return relative

    def add(self, item: PageItem) -> None:
        """Add a card (its media must come from this writer)."""
        for path in (item.picture, item.plain_picture, item.audio):
            if path is not None and not re.fullmatch(rf"{MEDIA}/\d{{5}}\.(jpg|wav)", path):
                raise ValueError(f"{path!r} is not a file of this page's media")
        names = {f.name for f in self.filters}
        unknown = [name for name, _ in item.filters if name not in names]
        if unknown:
            raise ValueError(f"card filters {unknown} are not filters of the page")
        self.items.append(item)

    # -- the page -----------------------------------------------------------------------------
    def html(self) -> str:
        """The page's HTML."""
        policy = (
            "default-src 'none'; img-src 'self' file:; media-src 'self' file:; "
            f"style-src 'unsafe-inline'; script-src '{_script_hash()}'"
        )
        parts = [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta name="generator" content="{GENERATOR}">',
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(self.title)}</title><style>{_STYLE}</style></head><body>",
            f"<header><h1>{_e(self.title)}</h1>",
        ]
        if self.summary:
            parts.append(f'<p class="summary">{_e(chr(10).join(self.summary))}</p>')
        parts.append('<div class="controls">')
        for page_filter in self.filters:
            values = sorted(
                {v for item in self.items for n, v in item.filters if n == page_filter.name}
            )
            options = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
            parts.append(
                f"<label>{_e(page_filter.label)} "
                f'<select data-filter="{page_filter.name}"><option value="">all</option>'
                f"{options}</select></label>"
            )
        parts.append('<span id="count"></span>')
        if self.legend:
            swatches = "".join(
                f'<span class="swatch" style="background:rgb{tuple(color)}"></span>{_e(meaning)}'
                for color, meaning in self.legend
            )
            parts.append(f'<span class="legend">{swatches}</span>')
        parts.append("</div></header><main>")
        parts += [self._card(item) for item in self.items]
        parts.append(f"</main><script>{_SCRIPT}</script></body></html>\n")
        return "\n".join(parts)

    def _card(self, item: PageItem) -> str:
        data = "".join(f' data-{name}="{_e(value)}"' for name, value in item.filters)
        out = [f'<figure class="card"{data}><div class="pic">']
        out.append(f'<img src="{item.picture}" alt="{_e(item.title)}">')
        if item.plain_picture is not None:
            out.append(
                f'<img class="plain" src="{item.plain_picture}" alt="{_e(item.title)}, no mask">'
            )
        out.append("</div><figcaption>")
        badge = f'<span class="badge">{_e(item.badge)}</span>' if item.badge else ""
        out.append(f"<h2>{_e(item.title)}{badge}</h2>")
        if item.audio is not None:
            out.append(f'<audio controls preload="metadata" src="{item.audio}"></audio>')
        if item.facts:
            rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in item.facts)
            out.append(f"<dl>{rows}</dl>")
        if item.links:
            links = " · ".join(
                f'<a href="{_e(url)}" rel="noopener noreferrer">{_e(text)}</a>'
                if _SAFE_URL.match(url)
                else f"{_e(text)}: {_e(url)}"
                for text, url in item.links
            )
            out.append(f'<p class="links">{links}</p>')
        out.append("</figcaption></figure>")
        return "".join(out)

    def _publish(self, media: Path) -> None:
        index = self.folder / INDEX
        final = self.folder / MEDIA
        index.unlink(missing_ok=True)  # no complete-looking page while the media change
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{MEDIA}.old-", dir=self.folder))
            final.rename(old / MEDIA)
            shutil.rmtree(old, ignore_errors=True)
        media.chmod(0o777 & ~_umask())
        media.rename(final)
        handle = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=self.folder, prefix=f".{INDEX}.", delete=False
        )
        try:
            with handle:
                handle.write(self.html())
            os.chmod(handle.name, 0o666 & ~_umask())
            os.replace(handle.name, index)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _is_ours(index: Path) -> bool:
    try:
        head = index.read_text(encoding="utf-8", errors="replace")[:2000]
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR}">' in head
