"""Reading a delivery, file by file: landing -> convert -> validation -> bronze."""
