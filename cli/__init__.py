"""The ``ttsplan`` command line: one small module per command (parse → one library call → render)."""
