#define LOG_PREFIX "pstree: "
#include <errno.h>
#include <string.h>

#include "image.h"
#include "log.h"
#include "pstree.h"
#include "pstree.pb-c.h"
#include "util.h"

struct pstree_item *pstree_find(struct pstree *t, pid_t pid)
{
	for (int i = 0; i < t->nr; i++)
		if (t->items[i]->pid == pid)
			return t->items[i];
	return NULL;
}

struct pstree_item *pstree_add(struct pstree *t, struct pstree_item *parent, pid_t pid)
{
	struct pstree_item *it = xzalloc(sizeof(*it));

	it->pid = pid;
	it->pidfd = -1;
	it->parent = parent;
	it->idx = t->nr;
	t->items = xrealloc(t->items, (t->nr + 1) * sizeof(*t->items));
	t->items[t->nr++] = it;
	if (parent) {
		parent->children = xrealloc(parent->children,
					    (parent->nr_children + 1) * sizeof(*parent->children));
		parent->children[parent->nr_children++] = it;
	}
	return it;
}

void pstree_free(struct pstree *t)
{
	for (int i = 0; i < t->nr; i++) {
		struct pstree_item *it = t->items[i];
		free(it->threads);
		free(it->thread_nspid);
		free(it->seized);
		free(it->children);
		free(it);
	}
	free(t->items);
	memset(t, 0, sizeof(*t));
}

pid_t item_thread_vtid(const struct pstree_item *it, int i)
{
	return it->thread_nspid[i * it->ns_levels + it->ns_levels - 1];
}

int pstree_write_image(int dirfd, const char *dir, struct pstree *t)
{
	struct img *img = img_open_write(dirfd, dir, IMG_PSTREE, 0);
	int ret = 0;

	if (!img)
		return -EIO;
	for (int i = 0; i < t->nr && !ret; i++) {
		struct pstree_item *it = t->items[i];
		PstreeEntry e = PSTREE_ENTRY__INIT;
		uint32_t nspid[PROC_MAX_NS], nspgid = it->nspgid, nssid = it->nssid;

		for (int l = 0; l < it->ns_levels; l++)
			nspid[l] = it->nspid[l];
		e.pid = it->pid;
		e.ppid = it->parent ? it->parent->pid : 0;
		e.pgid = it->pgid;
		e.sid = it->sid;
		e.n_threads = it->nr_threads;
		e.threads = (uint32_t *)it->threads;
		e.n_nspid = it->ns_levels;
		e.nspid = nspid;
		e.n_nspgid = 1;
		e.nspgid = &nspgid;
		e.n_nssid = 1;
		e.nssid = &nssid;
		e.has_zombie = e.zombie = it->zombie;
		e.has_exit_code = true;
		e.exit_code = it->exit_code;
		if (it->zombie)
			e.comm = it->comm;
		e.has_stopped = true;
		e.stopped = it->stopped;
		e.has_share_fs = it->share_fs;
		e.share_fs = it->share_fs;
		e.has_share_files = it->share_files;
		e.share_files = it->share_files;
		e.has_pidns_child = it->has_pidns_child;
		e.pidns_child = it->pidns_child;
		e.n_thread_nstids = it->nr_threads * it->ns_levels;
		e.thread_nstids = (uint32_t *)it->thread_nspid;
		ret = img_write_msg(img, &e.base);
	}
	if (ret) {
		img_abort(img);
		return ret;
	}
	return img_close(img);
}

static int item_from_entry(struct pstree *t, PstreeEntry *e, const char *dir)
{
	struct pstree_item *parent = NULL, *it;

	if (t->nr) {
		parent = pstree_find(t, e->ppid);
		if (!parent) {
			pr_err("%s/pstree.img: pid %u names parent %u that comes nowhere before it\n",
			       dir, e->pid, e->ppid);
			return -EBADMSG;
		}
	}
	if (pstree_find(t, e->pid) || e->n_nspid < 1 || e->n_nspid > PROC_MAX_NS ||
	    (!e->zombie && e->n_threads < 1) || e->n_nspgid != 1 || e->n_nssid != 1 ||
	    e->n_thread_nstids != e->n_threads * e->n_nspid || e->nspid[0] != e->pid) {
		pr_err("%s/pstree.img: inconsistent entry for pid %u\n", dir, e->pid);
		return -EBADMSG;
	}
	it = pstree_add(t, parent, e->pid);
	it->ppid = e->ppid;
	it->pgid = e->pgid;
	it->sid = e->sid;
	it->ns_levels = e->n_nspid;
	for (size_t l = 0; l < e->n_nspid; l++)
		it->nspid[l] = e->nspid[l];
	it->nspgid = e->nspgid[0];
	it->nssid = e->nssid[0];
	it->share_fs = e->share_fs && parent;
	it->share_files = e->share_files && parent;
	it->has_pidns_child = e->has_pidns_child;
	it->pidns_child = e->pidns_child;
	it->nr_threads = e->n_threads;
	it->threads = xmalloc(sizeof(pid_t) * (e->n_threads + 1));
	if (e->n_threads)	/* a zombie has none: threads is NULL then */
		memcpy(it->threads, e->threads, sizeof(pid_t) * e->n_threads);
	it->thread_nspid = xmalloc(sizeof(pid_t) * (e->n_thread_nstids + 1));
	if (e->n_thread_nstids)
		memcpy(it->thread_nspid, e->thread_nstids, sizeof(pid_t) * e->n_thread_nstids);
	it->seized = xzalloc(sizeof(bool) * (e->n_threads + 1));
	it->zombie = e->zombie;
	it->exit_code = e->exit_code;
	it->stopped = e->stopped;
	if (e->comm)
		snprintf(it->comm, sizeof(it->comm), "%.15s", e->comm);
	if (!it->zombie && it->threads[0] != it->pid) {
		pr_err("%s/pstree.img: pid %u: first thread is %d\n", dir, e->pid, it->threads[0]);
		return -EBADMSG;
	}
	return 0;
}

int pstree_read_image(int dirfd, const char *dir, struct pstree *t)
{
	struct img *img = img_open_read(dirfd, dir, IMG_PSTREE, 0);
	int ret;

	if (!img)
		return -ENOENT;
	for (;;) {
		PstreeEntry *e;

		ret = img_read_msg(img, &pstree_entry__descriptor, (ProtobufCMessage **)&e);
		if (ret <= 0)
			break;
		ret = item_from_entry(t, e, dir);
		img_free_msg(&e->base);
		if (ret < 0)
			break;
	}
	img_abort(img);
	if (ret == 0 && t->nr == 0) {
		pr_err("%s/pstree.img holds no process\n", dir);
		ret = -EBADMSG;
	}
	return ret;
}
