"""Integrations with evaluation tools: pieces that run inside them (``ttsplan.integrations.inspect``).

May import :mod:`ttsplan.features` and :mod:`ttsplan.fitting`; the tools themselves are imported inside
the functions that need them (``pip install 'ttsplan[inspect]'``).
"""
