#!/bin/sh
# Stands in for ssh in the hostile-peer tests: ignores every option and the host, runs the remote command here.
for last; do :; done
exec sh -c "$last"
