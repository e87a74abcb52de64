"""Keeping task data secret on its way through Temporal: the payload codec, its keys,
and the codec server's protocol."""
