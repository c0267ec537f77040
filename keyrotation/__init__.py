"""Key rotation: re-seal every sealed column with the active data key, so an old key can be
retired (``sealed``), and recompute the phone numbers' keyed hashes under a new HMAC key
(``rehash``); ``flask keys usage|reseal|rehash`` (``cli``).

It sits above the packages whose columns it rewrites (inquiries, routing, recordings, staff):
like the console, nothing below imports it; the app registers its commands.
"""
