"""Backends of the ports, one module each. Imported only by the composition root,
and only the modules of the chosen backend (boto3 is never loaded for `embedded`)."""
