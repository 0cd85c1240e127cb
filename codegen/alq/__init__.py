"""ALQ multi-bit networks (thesis chapter 2): the integer model format, its NumPy reference, and the
training pipeline that produces it (ALQ.md)."""
