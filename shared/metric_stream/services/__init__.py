"""The pipeline's services: one function per thing the system does, over the stores."""
