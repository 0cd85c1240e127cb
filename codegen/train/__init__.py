"""On-device training: the training graph, its int8 (Octo) and fp32 arithmetic, and the trainer.

The arithmetic contract is written down in TRAINING.md beside this file; the
NumPy code here is its one executable definition, and the generated C is
compared with it integer for integer.
"""
