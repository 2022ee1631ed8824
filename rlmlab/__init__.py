"""rlmlab: Recursive Language Models over contexts that live in object storage."""

__version__ = "0.1.0"
