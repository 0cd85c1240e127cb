"""host/stm32rom.py against an AN3155 peer (no STM32 here; see an3155_peer.py)."""
import random
import zlib

import pytest
from an3155_peer import ACK, NACK, STM32L4R5_PID, WRITE_MEMORY, An3155Peer

from codegen.errors import FlashError, InputError, ResourceError
from host.stm32rom import DEFAULT_FLASH_BYTES, MAX_TRANSFER_BYTES, Stm32RomFlasher, address_bytes, xor
from host.transport import open_port

BASE = 0x08000000
PAGE = 4096
#: Short enough that the silent-ROM test stays quick, ample for a local peer.
TIMEOUT = 0.3


@pytest.fixture
def image():
    return random.Random(7).randbytes(3 * PAGE + 123)  # 4 pages, a partial last write block


def _flasher(peer, **options):
    port = open_port(peer.url, parity="E")
    return port, Stm32RomFlasher(port, flash_base=BASE, flash_bytes=len(peer.flash), page_bytes=PAGE,
                                 timeout=TIMEOUT, progress=False, **options)


def test_checksums_follow_an3155():
    assert xor(b"\x08\x00\x00\x00") == 0x08
    assert address_bytes(0x08000100) == bytes((0x08, 0x00, 0x01, 0x00, 0x09))


def test_flash_writes_verifies_and_jumps(image):
    with An3155Peer() as peer:
        port, flasher = _flasher(peer)
        with port:
            result = flasher.flash(image)
            assert flasher.get_id() == STM32L4R5_PID
        assert bytes(peer.flash[:len(image)]) == image
        assert peer.flash[len(image):len(image) + 4] == b"\xff" * 4  # the last block's word padding
        assert peer.erased_pages == [0, 1, 2, 3]
        assert peer.go_address == BASE
    assert result.protocol == "stm32" and result.booted
    assert result.verify_crc32 == result.image_crc32 == zlib.crc32(image)
    assert result.board == "STM32 product ID 0x470"
    writes = -(-len(image) // MAX_TRANSFER_BYTES)
    assert result.wire.tx_bytes > len(image) + writes * 9  # command, address and checksum overhead
    assert 0.4 < result.wire_efficiency < 1.0  # every byte goes out once and comes back once


def test_a_second_image_erases_before_writing(image):
    """Without the erase, programming could only clear bits and the read-back would differ."""
    other = bytes(b ^ 0x5A for b in image)
    with An3155Peer() as peer:
        port, flasher = _flasher(peer)
        with port:
            flasher.flash(image, boot=False)
            flasher.flash(other, boot=False)
        assert bytes(peer.flash[:len(other)]) == other
        assert peer.go_address is None


def test_the_rom_nacks_a_bad_address_checksum():
    with An3155Peer() as peer, open_port(peer.url, parity="E", timeout=TIMEOUT) as port:
        port.write(bytes((0x7F,)))
        assert port.read(1) == bytes((ACK,))
        port.write(bytes((WRITE_MEMORY, WRITE_MEMORY ^ 0xFF)))
        assert port.read(1) == bytes((ACK,))
        bad = bytearray(address_bytes(BASE))
        bad[-1] ^= 0x01
        port.write(bytes(bad))
        assert port.read(1) == bytes((NACK,))
        port.write(bytes((WRITE_MEMORY, WRITE_MEMORY)))  # a wrong complement
        assert port.read(1) == bytes((NACK,))


def test_a_nacked_write_is_repeated(image):
    with An3155Peer(nack_writes=2) as peer:
        port, flasher = _flasher(peer)
        with port:
            result = flasher.flash(image)
        assert bytes(peer.flash[:len(image)]) == image
    assert result.wire.retries == 2 and result.wire.bad_frames == 2


def test_a_write_nacked_every_time_fails_naming_the_address(image):
    with An3155Peer(nack_writes=100) as peer:
        port, flasher = _flasher(peer, retries=2)
        with port, pytest.raises(FlashError, match=r"^WRITE MEMORY at 0x08000000: .* refused it \(NACK\) 3 times"):
            flasher.flash(image)


def test_a_cell_that_does_not_program_fails_verification(image):
    stuck = BASE + 1000
    with An3155Peer(stuck_zero=(stuck,)) as peer:
        image = image[:1000] + b"\x01" + image[1001:]
        port, flasher = _flasher(peer)
        with port, pytest.raises(FlashError, match=r"^verify: flash at 0x080003e8 reads 0x00, image has 0x01"):
            flasher.flash(image)
        assert peer.go_address is None  # never jump into a bad image


def test_a_silent_line_gives_a_one_line_error(image):
    with An3155Peer(silent=True) as peer:
        port, flasher = _flasher(peer)
        with port, pytest.raises(FlashError, match=r"^no STM32 ROM bootloader answered 0x7F on socket://127.0.0.1:\d+ "
                                                   r"\(3 attempts; is BOOT0 high and the line 8E1\?\)$"):
            flasher.flash(image)


def test_an_image_larger_than_the_flash_is_refused_before_sending(tmp_path):
    with An3155Peer(flash_bytes=PAGE) as peer:
        port, flasher = _flasher(peer)
        with port, pytest.raises(ResourceError, match=r"is 4097 bytes, the flash 0x08000000-0x08001000 holds 4096"):
            flasher.flash(b"\0" * (PAGE + 1))
        empty = tmp_path / "empty.bin"
        empty.write_bytes(b"")
        with port, pytest.raises(InputError, match="empty.bin is empty"):
            flasher.flash(empty)
        assert not peer.synced  # nothing went on the line


def test_cli_flash_with_the_stm32_protocol(tmp_path, image):
    from click.testing import CliRunner

    from host.cli import main

    binary = tmp_path / "standalone.bin"
    binary.write_bytes(image)
    with An3155Peer(flash_bytes=DEFAULT_FLASH_BYTES) as peer:
        result = CliRunner().invoke(main, ["flash", str(binary), "--port", peer.url, "--protocol", "stm32", "--quiet"])
        assert result.exit_code == 0, result.output
        assert bytes(peer.flash[:len(image)]) == image and peer.go_address == BASE
    lines = result.output.splitlines()
    assert lines[0] == f"flashed {binary} to STM32 product ID 0x470 at 0x08000000 over {peer.url} (stm32)"
    assert lines[1] == (f"verify: OK by reading every byte back: CRC-32 0x{zlib.crc32(image):08x} over "
                        f"{len(image):,} bytes matches the image")
    assert lines[2] == "started the application" and lines[3].startswith("throughput: ")
