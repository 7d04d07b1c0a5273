"""Reports: by allocation site (get_mem_report), mtrace, memcheck-style, JSON, HTML, massif, collapsed stacks."""
