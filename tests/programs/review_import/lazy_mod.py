CONFIG = {"k": 1}
