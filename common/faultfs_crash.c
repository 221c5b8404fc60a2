/* faultfs: the power loss. The process dies (its descriptors close, releasing flocks), then the
 * data of every file is put back to a state the policy allows (through our own descriptor per
 * inode, whatever its name is now), then each directory's lost suffix of name operations is
 * undone in reverse order.
 *
 * Data goes first: repairs work on inodes, not names, so they are not disturbed by the undo,
 * and a file whose create is undone may as well be repaired first (it then vanishes). */
#include "faultfs_int.h"

kv_status kv_faultfs_crash(kv_fs *kfs, kv_crash_policy policy, uint64_t seed)
{
    ff_fs *fs = (ff_fs *)kfs;
    if ((unsigned)policy > KV_CRASH_TORN_BYTES)
        return kv_error(KV_INVALID, "faultfs: bad crash policy %d", (int)policy);
    pthread_mutex_lock(&fs->mu);
    if (!fs->crashed) {
        fs->crashed = true;
        fs->crash_op = fs->ops + 1;
    }
    kv_status s = KV_OK;
    if (!fs->repaired) {
        fs->repaired = true;
        ff_files_kill(fs);
        ff_policy pol;
        ff_policy_init(&pol, policy, seed);
        s = ff_inodes_crash(fs, &pol);
        kv_status n = ff_nameops_crash(fs, &pol);
        if (s == KV_OK)
            s = n;
        if (s != KV_OK)
            s = KV_IO; /* whatever errno the repair met (the message keeps it) */
    }
    pthread_mutex_unlock(&fs->mu);
    return s;
}
