#!/usr/bin/env bash
# Run one command with the background training runs paused (SIGSTOP), so timings see idle cores;
# the runs continue (SIGCONT) when the command ends, however it ends. Use for final benchmark numbers only.
pids=$(pgrep -f "lcoan.train|lcoan/training|lcoan.training" || true)
resume() { [ -n "$pids" ] && kill -CONT $pids 2>/dev/null; }
trap resume EXIT INT TERM
[ -n "$pids" ] && kill -STOP $pids 2>/dev/null
"$@"
