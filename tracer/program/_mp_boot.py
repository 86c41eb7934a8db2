"""Imported first by a spawned child's command line and by a forkserver's preload list: the
patches are installed before the user's module is imported (see ``_patch_mp``)."""

from tracer.program._patch_mp import boot

boot()
