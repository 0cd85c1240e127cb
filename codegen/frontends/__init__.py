"""Model frontends: each turns a file format into the IR."""
