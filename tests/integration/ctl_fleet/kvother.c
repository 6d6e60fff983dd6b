/* SPDX-License-Identifier: MIT */
/*
 * pd_kvother: examples/kv's server, built again under another name (and
 * with another build-id, test_ctl_patch_dir.cmake): another build of the
 * same program. A file of its own, so that the compilation database keeps
 * one entry for kvserver.c (rewire build-patch of fix_value.diff looks it
 * up there).
 */
#include "../../../examples/kv/kvserver.c"
