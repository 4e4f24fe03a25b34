from cxloop_collector.orm import metadata
from cxruntime.migrations import run_env

run_env(metadata)
