"""The bytes to flash: a raw .bin or an ELF flattened to what its loader would place.

The bootloader writes an image at the start of its application area, vector
table first (firmware/PROTOCOL.md section 1), so an ELF must be linked there
(build_firmware(..., image="app")). An ELF linked for bare QEMU (address 0)
would overwrite the bootloader; it is refused here with a one-line error
before a byte goes on the wire.

    image = load_image(Path("build/fw/bench.elf"), base=0x8000, max_bytes=0x3F8000)
    image.data, image.crc32
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import InputError, ResourceError

#: What erased flash reads as; gaps between ELF segments are filled with it.
ERASED_BYTE = 0xFF
ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class Image:
    data: bytes
    base: int       #: absolute address of data[0]
    source: str     #: where it came from, for messages

    @property
    def crc32(self) -> int:
        return zlib.crc32(self.data)


def _span(base: int, max_bytes: int) -> str:
    return f"0x{base:08x}-0x{base + max_bytes:08x}"


def _elf_segments(path: Path) -> list[tuple[int, bytes]]:
    """(physical address, file bytes) of every PT_LOAD segment that has bytes in the file."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as stream:
            return [(seg["p_paddr"], seg.data()) for seg in ELFFile(stream).iter_segments()
                    if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] > 0]
    except ELFError as err:
        raise InputError(f"{path}: not a readable ELF file ({err})") from None


def _flatten(segments: list[tuple[int, bytes]]) -> tuple[int, bytes]:
    """One contiguous block from the lowest to the highest loaded byte, gaps erased."""
    low = min(address for address, _ in segments)
    high = max(address + len(data) for address, data in segments)
    flat = bytearray([ERASED_BYTE]) * (high - low)
    for address, data in segments:
        flat[address - low:address - low + len(data)] = data
    return low, bytes(flat)


#: The tinysyn bootloader's area and the fix for an ELF linked for bare QEMU or a board.
APP_AREA = "the application area"
APP_HINT = "link it with image=app"


def load_image(path: Path, base: int, max_bytes: int, area: str = APP_AREA, hint: str = APP_HINT) -> Image:
    """The image in `path` (.elf by its magic, anything else raw) for `area` at base.

    InputError if the file is unreadable, empty or an ELF not linked at `base`
    (`hint` says how to fix it); ResourceError if it is larger than the area
    (both sizes named).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read image {path}: {err.strerror}") from None
    if not raw.startswith(ELF_MAGIC):
        return image_from_bytes(raw, base, max_bytes, str(path), area)
    segments = _elf_segments(path)
    if not segments:
        raise InputError(f"{path} has no loadable segments")
    low, data = _flatten(segments)
    where = f"{area} {_span(base, max_bytes)}"
    fix = f": {hint}" if hint else ""
    if low < base:
        raise InputError(f"{path} loads at 0x{low:08x}, below {where}{fix}")
    if low >= base + max_bytes:
        raise InputError(f"{path} loads at 0x{low:08x}, above {where}{fix}")
    if low != base:
        raise InputError(f"{path} loads at 0x{low:08x}, not at the start of {where}, "
                         f"where its vector table must be{fix}")
    return image_from_bytes(data, base, max_bytes, str(path), area)


def image_from_bytes(data: bytes, base: int, max_bytes: int, source: str = "the image", area: str = APP_AREA) -> Image:
    """Raw bytes placed at base, with load_image's emptiness and size checks."""
    if not data:
        raise InputError(f"{source} is empty")
    if len(data) > max_bytes:
        raise ResourceError(f"{source} is {len(data)} bytes, {area} {_span(base, max_bytes)} "
                            f"holds {max_bytes} bytes")
    return Image(bytes(data), base, source)


def as_image(image: bytes | Path | str, base: int, max_bytes: int, area: str = APP_AREA,
             hint: str = APP_HINT) -> Image:
    """Bytes as they are, or the file at a path through load_image."""
    if isinstance(image, (bytes, bytearray)):
        return image_from_bytes(bytes(image), base, max_bytes, area=area)
    return load_image(Path(image), base, max_bytes, area, hint)
