"""ALQ multi-bit networks (thesis chapter 2): the integer model format and its NumPy reference."""
