"""Input readers and output writers: I/O lives at the edges."""
