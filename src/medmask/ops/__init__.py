"""What the command line does, as a library: pack sources into archives, unpack and export
them, inspect and verify them, draw previews. The command line only parses and prints."""
