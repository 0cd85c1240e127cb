"""tinysyn host side: build firmware, run it on QEMU or a board, read its measurements."""
