"""The Amaranth xnor-popcount accelerator for ALQ networks (hw/README.md): core, layer driver, UART top level."""
