"""DRESS (thesis chapter 3): K sparse sub-nets of one int8 model, switchable by one integer.

``sampling`` picks the weights, ``format`` stores them (FORMAT.md), ``reference``
runs sub-net k on codegen/ref, ``oneshot`` makes sub-nets of a pretrained .tflite.
"""
