"""Sans-I/O protocol core: state machines that take an event and return effects."""
