"""
Sans-I/O decision cores.

Modules here take the current time as an argument and return decision
records.  They never read a clock, sleep, lock, await or call user code;
only the standard library, attrs and ``stalwart._typing`` are imported.
"""
