"""Lightning callbacks to put in configs (``class_path: callbacks.<module>.<Class>``).

Thin wrappers over ``numsym_pl``; add your own here."""
