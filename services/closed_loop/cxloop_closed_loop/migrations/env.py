from cxloop_closed_loop.orm import metadata
from cxruntime.migrations import run_env

run_env(metadata)
