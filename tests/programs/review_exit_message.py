import sys

sys.exit("fatal: no config file")
