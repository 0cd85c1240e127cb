"""The Amaranth accelerator package (xnor-popcount for ALQ networks); work in progress per issue 6."""
