/*
 * The objects of an IPC namespace the tree owns: System V shared memory
 * segments (content in ipc-shm-ID.img, sparse), semaphore sets, message
 * queues (read without consuming them, MSG_COPY) and POSIX message queues
 * (drained while the tree is frozen and refilled in the same order). They
 * are recreated with the same ids (kernel.*_next_id) in the new namespace.
 * The dump side runs inside the tree's IPC namespace (ns.c enters it).
 */
#define LOG_PREFIX "ipc: "
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mqueue.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include "cr.h"
#include "image.h"
#include "ipc.pb-c.h"
#include "log.h"
#include "ns.h"
#include "util.h"

#define COPY_BUF (1UL << 20)

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct rst_ipc {
	IpcEntry **objs;
	int nr;
};

/* ---- dump ---------------------------------------------------------------- */

static IpcPermEntry *new_perm(const struct ipc_perm *p, int id)
{
	IpcPermEntry *e = xmalloc(sizeof(*e));

	ipc_perm_entry__init(e);
	e->key = p->__key;
	e->id = id;
	e->uid = p->uid;
	e->gid = p->gid;
	e->mode = p->mode;
	return e;
}

static IpcEntry *new_obj(void)
{
	IpcEntry *e = xmalloc(sizeof(*e));

	ipc_entry__init(e);
	return e;
}

/* Every part is malloc'ed: protobuf-c frees it as if it had unpacked it. */
static void free_obj(IpcEntry *e)
{
	protobuf_c_message_free_unpacked(&e->base, NULL);
}

static int write_obj(struct img *img, IpcEntry *e)
{
	int ret = img_write_msg(img, &e->base);

	free_obj(e);
	return ret;
}

/* The segment's data, through our own attach: only its allocated ranges. */
static int dump_shm_data(int id, uint64_t size, int dirfd, const char *dir)
{
	char name[48], link[96];
	_cleanup_close_ int in = -1, out = -1;
	_cleanup_free_ char *buf = NULL;
	void *a = shmat(id, NULL, SHM_RDONLY);
	off_t off = 0;

	if (a == (void *)-1)
		return log_errno(-errno, "can't attach SysV segment %d to save it", id);
	snprintf(link, sizeof(link), "/proc/self/map_files/%lx-%lx", (unsigned long)a,
		 (unsigned long)a + PAGE_ALIGN(size));
	in = open(link, O_RDONLY | O_CLOEXEC);
	shmdt(a);
	if (in < 0)
		return log_errno(-errno, "SysV segment %d: can't open %s", id, link);
	snprintf(name, sizeof(name), "ipc-shm-%d.img", id);
	out = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return log_errno(-errno, "can't create %s/%s", dir, name);
	if (ftruncate(out, size) < 0)
		return log_errno(-errno, "can't size %s/%s", dir, name);
	buf = xmalloc(COPY_BUF);
	for (;;) {
		off_t data = lseek(in, off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return log_errno(-errno, "SysV segment %d: SEEK_DATA/SEEK_HOLE", id);
		for (off = data; off < hole && (uint64_t)off < size;) {
			size_t n = min_t(uint64_t, COPY_BUF, min_t(uint64_t, hole, size) - off);
			ssize_t r = pread_full(in, buf, n, off);

			if (r <= 0)
				return log_errno(r < 0 ? r : -EIO, "SysV segment %d: read at %jd", id,
						 (intmax_t)off);
			if (pwrite(out, buf, r, off) != r)
				return log_errno(-errno, "can't write %s/%s", dir, name);
			off += r;
		}
		if ((uint64_t)off >= size)
			break;
	}
	if (fsync(out) < 0)
		return log_errno(-errno, "can't fsync %s/%s", dir, name);
	return 0;
}

static int dump_shm(struct img *img, int dirfd, const char *dir)
{
	struct shm_info info;
	int max = shmctl(0, SHM_INFO, (struct shmid_ds *)&info);

	if (max < 0)
		return log_errno(-errno, "shmctl(SHM_INFO)");
	for (int idx = 0; idx <= max; idx++) {
		struct shmid_ds ds;
		int id = shmctl(idx, SHM_STAT_ANY, &ds), ret;
		IpcEntry *e;

		if (id < 0)
			continue;	/* a free slot */
		e = new_obj();
		e->shm = xmalloc(sizeof(*e->shm));
		shm_seg_entry__init(e->shm);
		e->shm->perm = new_perm(&ds.shm_perm, id);
		e->shm->size = ds.shm_segsz;
		ret = dump_shm_data(id, ds.shm_segsz, dirfd, dir);
		if (ret < 0) {
			free_obj(e);
			return ret;
		}
		if ((ret = write_obj(img, e)) < 0)
			return ret;
		pr_info("SysV segment %d: %zu bytes\n", id, (size_t)ds.shm_segsz);
	}
	return 0;
}

static int dump_sem(struct img *img)
{
	struct seminfo info;
	int max = semctl(0, 0, SEM_INFO, (union semun){ .buf = (struct semid_ds *)&info });

	if (max < 0)
		return log_errno(-errno, "semctl(SEM_INFO)");
	for (int idx = 0; idx <= max; idx++) {
		struct semid_ds ds;
		int id = semctl(idx, 0, SEM_STAT_ANY, (union semun){ .buf = &ds });
		unsigned short *vals;
		IpcEntry *e;

		if (id < 0)
			continue;
		vals = xmalloc((ds.sem_nsems + 1) * sizeof(*vals));
		if (semctl(id, 0, GETALL, (union semun){ .array = vals }) < 0) {
			free(vals);
			return log_errno(-errno, "semaphore set %d: GETALL", id);
		}
		e = new_obj();
		e->sem = xmalloc(sizeof(*e->sem));
		sem_set_entry__init(e->sem);
		e->sem->perm = new_perm(&ds.sem_perm, id);
		e->sem->values = xmalloc((ds.sem_nsems + 1) * sizeof(uint32_t));
		e->sem->n_values = ds.sem_nsems;
		for (size_t i = 0; i < ds.sem_nsems; i++)
			e->sem->values[i] = vals[i];
		free(vals);
		if (write_obj(img, e) < 0)
			return -EIO;
	}
	return 0;
}

static int dump_msg_queue(struct img *img, int id, struct msqid_ds *ds)
{
	size_t cap = max_t(size_t, ds->msg_qbytes, 65536) + sizeof(long);
	_cleanup_free_ char *buf = xmalloc(cap);
	IpcEntry *e = new_obj();
	MsgQueueEntry *q = xmalloc(sizeof(*q));

	msg_queue_entry__init(q);
	e->msg = q;
	q->perm = new_perm(&ds->msg_perm, id);
	q->qbytes = ds->msg_qbytes;
	q->msgs = xzalloc((ds->msg_qnum + 1) * sizeof(*q->msgs));
	for (size_t n = 0; n < ds->msg_qnum; n++) {
		ssize_t len = msgrcv(id, buf, cap - sizeof(long), n, IPC_NOWAIT | MSG_COPY | MSG_NOERROR);
		SysvMsgEntry *m;

		if (len < 0) {
			int err = log_errno(-errno, "message queue %d: can't copy message %zu (MSG_COPY)", id, n);
			free_obj(e);
			return err;
		}
		m = xmalloc(sizeof(*m));
		sysv_msg_entry__init(m);
		memcpy(&m->mtype, buf, sizeof(long));
		m->data.len = len;
		m->data.data = xmalloc(len + 1);
		memcpy(m->data.data, buf + sizeof(long), len);
		q->msgs[q->n_msgs++] = m;
	}
	return write_obj(img, e);
}

static int dump_msg(struct img *img)
{
	struct msginfo info;
	int max = msgctl(0, MSG_INFO, (struct msqid_ds *)&info);

	if (max < 0)
		return log_errno(-errno, "msgctl(MSG_INFO)");
	for (int idx = 0; idx <= max; idx++) {
		struct msqid_ds ds;
		int id = msgctl(idx, MSG_STAT_ANY, &ds), ret;

		if (id < 0)
			continue;
		if ((ret = dump_msg_queue(img, id, &ds)) < 0)
			return ret;
	}
	return 0;
}

/* A mount of this IPC namespace's mqueue filesystem, in no mount namespace. */
static int mqueue_mount(void)
{
	_cleanup_close_ int fs = fsopen("mqueue", FSOPEN_CLOEXEC);
	int m;

	if (fs < 0)
		return log_errno(-errno, "fsopen(mqueue)");
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return log_errno(-errno, "fsconfig(mqueue, FSCONFIG_CMD_CREATE)");
	m = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (m < 0)
		return log_errno(-errno, "fsmount(mqueue)");
	return m;
}

/* "QSIZE:0 NOTIFY:0 SIGNO:0 NOTIFY_PID:0": a registered notification is refused. */
static int check_mq_notify(int dfd, const char *name)
{
	char *text = NULL, *p;
	ssize_t n = read_file_at(dfd, name, &text);
	int ret = 0;

	if (n < 0)
		return log_errno(n, "POSIX message queue /%s: can't read its state", name);
	p = strstr(text, "NOTIFY_PID:");
	if (p && atoi(p + 11) != 0) {
		pr_err("POSIX message queue /%s: a notification is registered (mq_notify, pid %d); not supported\n",
		       name, atoi(p + 11));
		ret = -EOPNOTSUPP;
	}
	free(text);
	return ret;
}

/* Put back what we took, in the same order: the tree must not notice. */
static int refill_mq(mqd_t q, const char *name, MqueueEntry *m)
{
	int ret = 0;

	for (size_t i = 0; i < m->n_msgs; i++)
		if (mq_send(q, (char *)m->msgs[i]->data.data, m->msgs[i]->data.len, m->msgs[i]->prio) < 0)
			ret = log_errno(-errno, "POSIX message queue /%s: can't put message %zu back: LOST",
					name, i);
	return ret;
}

static int drain_mq(const char *name, MqueueEntry *m)
{
	char qname[NAME_MAX + 2];
	struct mq_attr at;
	_cleanup_free_ char *buf = NULL;
	mqd_t q;
	int ret = 0;

	snprintf(qname, sizeof(qname), "/%s", name);
	q = mq_open(qname, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (q == (mqd_t)-1)
		return log_errno(-errno, "can't open POSIX message queue %s", qname);
	if (mq_getattr(q, &at) < 0) {
		ret = log_errno(-errno, "POSIX message queue %s: mq_getattr", qname);
		goto out;
	}
	m->maxmsg = at.mq_maxmsg;
	m->msgsize = at.mq_msgsize;
	m->msgs = xzalloc((at.mq_curmsgs + 1) * sizeof(*m->msgs));
	buf = xmalloc(at.mq_msgsize + 1);
	while ((long)m->n_msgs < at.mq_curmsgs) {
		unsigned prio;
		ssize_t n = mq_receive(q, buf, at.mq_msgsize, &prio);
		MqMsgEntry *e;

		if (n < 0) {
			if (errno != EAGAIN)
				ret = log_errno(-errno, "POSIX message queue %s: mq_receive", qname);
			break;
		}
		e = xmalloc(sizeof(*e));
		mq_msg_entry__init(e);
		e->prio = prio;
		e->data.len = n;
		e->data.data = xmalloc(n + 1);
		memcpy(e->data.data, buf, n);
		m->msgs[m->n_msgs++] = e;
	}
	if (refill_mq(q, qname, m) < 0)
		ret = -EIO;
out:
	mq_close(q);
	return ret;
}

static int dump_one_mq(struct img *img, int dfd, const char *name)
{
	struct stat st;
	int ret = check_mq_notify(dfd, name);
	IpcEntry *e;

	if (ret < 0)
		return ret;
	if (fstatat(dfd, name, &st, 0) < 0)
		return log_errno(-errno, "POSIX message queue /%s: stat", name);
	e = new_obj();
	e->mq = xmalloc(sizeof(*e->mq));
	mqueue_entry__init(e->mq);
	e->mq->name = xstrdup(name);
	e->mq->mode = st.st_mode & 07777;
	e->mq->uid = st.st_uid;
	e->mq->gid = st.st_gid;
	ret = drain_mq(name, e->mq);
	if (ret < 0) {
		free_obj(e);
		return ret;
	}
	pr_info("POSIX message queue /%s: %zu messages\n", name, e->mq->n_msgs);
	return write_obj(img, e);
}

static int dump_mqueues(struct img *img)
{
	_cleanup_close_ int m = mqueue_mount();
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int dfd, ret = 0;

	if (m < 0)
		return m;
	dfd = openat(m, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		if (dfd >= 0)
			close(dfd);
		return log_errno(-errno, "can't list the POSIX message queues");
	}
	while (!ret && (errno = 0, de = readdir(d)))
		if (de->d_name[0] != '.')
			ret = dump_one_mq(img, dirfd(d), de->d_name);
	if (!ret && errno)
		ret = log_errno(-errno, "can't list the POSIX message queues");
	return ret;
}

int ipc_dump(int dirfd, const char *dir)
{
	struct img *img = img_open_write(dirfd, dir, IMG_IPC, 0);
	int ret;

	if (!img)
		return -EIO;
	ret = dump_shm(img, dirfd, dir);
	if (!ret)
		ret = dump_sem(img);
	if (!ret)
		ret = dump_msg(img);
	if (!ret)
		ret = dump_mqueues(img);
	if (ret) {
		img_abort(img);
		return ret;
	}
	return img_close(img);
}

/* ---- restore ------------------------------------------------------------- */

static int check_obj(struct rst_ctx *rc, IpcEntry *e)
{
	int n = !!e->shm + !!e->sem + !!e->msg + !!e->mq;

	if (n != 1) {
		pr_err("%s/ipc.img: an entry describes %d objects\n", rc->dir, n);
		return -EBADMSG;
	}
	if (e->mq && (!e->mq->name[0] || strchr(e->mq->name, '/') || strlen(e->mq->name) > NAME_MAX)) {
		pr_err("%s/ipc.img: bad POSIX message queue name '%s'\n", rc->dir, e->mq->name);
		return -EBADMSG;
	}
	return 0;
}

int ipc_restore_load(struct rst_ctx *rc)
{
	struct img *img = img_open_read(rc->dirfd, rc->dir, IMG_IPC, 0);
	struct rst_ipc *ri = xzalloc(sizeof(*ri));
	int ret;

	rc->ns.ipc = ri;
	if (!img)
		return -EIO;
	for (;;) {
		IpcEntry *e;

		ret = img_read_msg(img, &ipc_entry__descriptor, (ProtobufCMessage **)&e);
		if (ret <= 0)
			break;
		ri->objs = xrealloc(ri->objs, (ri->nr + 1) * sizeof(*ri->objs));
		ri->objs[ri->nr++] = e;
		if ((ret = check_obj(rc, e)) < 0)
			break;
	}
	img_abort(img);
	return ret;
}

void ipc_restore_release(struct rst_ctx *rc)
{
	struct rst_ipc *ri = rc->ns.ipc;

	if (!ri)
		return;
	for (int i = 0; i < ri->nr; i++)
		img_free_msg(&ri->objs[i]->base);
	free(ri->objs);
	free(ri);
	rc->ns.ipc = NULL;
}

/* The next object of this kind gets exactly this id. */
static int set_next_id(const char *kind, int id)
{
	char path[64], val[16];
	_cleanup_close_ int fd = -1;
	int n = snprintf(val, sizeof(val), "%d", id);

	snprintf(path, sizeof(path), "/proc/sys/kernel/%s_next_id", kind);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write_full(fd, val, n) != n)
		return log_errno(-errno, "can't write %d to %s", id, path);
	return 0;
}

static int check_id(const char *what, int got, int want)
{
	if (got < 0)
		return log_errno(-errno, "can't recreate %s %d", what, want);
	if (got != want) {
		pr_err("%s %d came back as %d\n", what, want, got);
		return -EEXIST;
	}
	return 0;
}

static void set_perm(struct ipc_perm *p, const IpcPermEntry *e)
{
	p->uid = e->uid;
	p->gid = e->gid;
	p->mode = e->mode & 0777;
}

static int fill_shm(int id, const char *dir, int dirfd, uint64_t size)
{
	char name[48], link[96];
	_cleanup_close_ int in = -1, out = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	void *a;
	off_t off = 0;

	snprintf(name, sizeof(name), "ipc-shm-%d.img", id);
	in = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0)
		return log_errno(-errno, "can't open %s/%s", dir, name);
	if ((uint64_t)st.st_size != size) {
		pr_err("%s/%s: %jd bytes, the segment has %" PRIu64 "\n", dir, name, (intmax_t)st.st_size, size);
		return -EBADMSG;
	}
	a = shmat(id, NULL, 0);
	if (a == (void *)-1)
		return log_errno(-errno, "can't attach SysV segment %d to fill it", id);
	snprintf(link, sizeof(link), "/proc/self/map_files/%lx-%lx", (unsigned long)a,
		 (unsigned long)a + PAGE_ALIGN(size));
	out = open(link, O_RDWR | O_CLOEXEC);
	shmdt(a);
	if (out < 0)
		return log_errno(-errno, "SysV segment %d: can't open %s", id, link);
	buf = xmalloc(COPY_BUF);
	while ((uint64_t)off < size) {
		off_t data = lseek(in, off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return log_errno(-errno, "%s/%s: SEEK_DATA/SEEK_HOLE", dir, name);
		for (off = data; off < hole;) {
			ssize_t r = pread_full(in, buf, min_t(uint64_t, COPY_BUF, hole - off), off);

			if (r <= 0)
				return log_errno(r < 0 ? r : -EIO, "%s/%s: read at %jd", dir, name, (intmax_t)off);
			if (pwrite(out, buf, r, off) != r)
				return log_errno(-errno, "SysV segment %d: write at %jd", id, (intmax_t)off);
			off += r;
		}
	}
	return 0;
}

static int create_shm(struct rst_ctx *rc, ShmSegEntry *s)
{
	IpcPermEntry *p = s->perm;
	struct shmid_ds ds = { 0 };
	int ret = set_next_id("shm", p->id), id;

	if (ret < 0)
		return ret;
	id = shmget(p->key, s->size, IPC_CREAT | IPC_EXCL | 0600);
	if ((ret = check_id("SysV segment", id, p->id)) < 0)
		return ret;
	ret = fill_shm(id, rc->dir, rc->dirfd, s->size);
	if (ret < 0)
		return ret;
	set_perm(&ds.shm_perm, p);
	if (shmctl(id, IPC_SET, &ds) < 0)
		return log_errno(-errno, "SysV segment %d: IPC_SET", id);
	if ((p->mode & SHM_LOCKED) && shmctl(id, SHM_LOCK, NULL) < 0)
		return log_errno(-errno, "SysV segment %d: SHM_LOCK", id);
	return 0;
}

static int create_sem(SemSetEntry *s)
{
	IpcPermEntry *p = s->perm;
	struct semid_ds ds = { 0 };
	_cleanup_free_ unsigned short *vals = xmalloc((s->n_values + 1) * sizeof(*vals));
	int ret = set_next_id("sem", p->id), id;

	if (ret < 0)
		return ret;
	if (!s->n_values) {
		pr_err("ipc.img: semaphore set %d has no semaphores\n", p->id);
		return -EBADMSG;
	}
	id = semget(p->key, s->n_values, IPC_CREAT | IPC_EXCL | 0600);
	if ((ret = check_id("semaphore set", id, p->id)) < 0)
		return ret;
	for (size_t i = 0; i < s->n_values; i++) {
		if (s->values[i] > 65535) {
			pr_err("ipc.img: semaphore set %d: value %u\n", id, s->values[i]);
			return -EBADMSG;
		}
		vals[i] = s->values[i];
	}
	if (semctl(id, 0, SETALL, (union semun){ .array = vals }) < 0)
		return log_errno(-errno, "semaphore set %d: SETALL", id);
	set_perm(&ds.sem_perm, p);
	if (semctl(id, 0, IPC_SET, (union semun){ .buf = &ds }) < 0)
		return log_errno(-errno, "semaphore set %d: IPC_SET", id);
	return 0;
}

static int create_msg(MsgQueueEntry *q)
{
	IpcPermEntry *p = q->perm;
	struct msqid_ds ds = { 0 };
	int ret = set_next_id("msg", p->id), id;

	if (ret < 0)
		return ret;
	id = msgget(p->key, IPC_CREAT | IPC_EXCL | 0600);
	if ((ret = check_id("message queue", id, p->id)) < 0)
		return ret;
	set_perm(&ds.msg_perm, p);
	ds.msg_qbytes = q->qbytes;
	if (msgctl(id, IPC_SET, &ds) < 0) {
		/* Above kernel.msgmnb needs CAP_SYS_RESOURCE, which may be missing. */
		if (errno != EPERM || msgctl(id, IPC_STAT, &ds) < 0)
			return log_errno(-errno, "message queue %d: IPC_SET", id);
		pr_warn("message queue %d: can't raise its size to %" PRIu64 " bytes (no CAP_SYS_RESOURCE); %lu\n",
			id, q->qbytes, (unsigned long)ds.msg_qbytes);
		set_perm(&ds.msg_perm, p);
		if (msgctl(id, IPC_SET, &ds) < 0)
			return log_errno(-errno, "message queue %d: IPC_SET", id);
	}
	for (size_t i = 0; i < q->n_msgs; i++) {
		SysvMsgEntry *m = q->msgs[i];
		_cleanup_free_ char *buf = xmalloc(sizeof(long) + m->data.len + 1);

		if (m->mtype <= 0) {
			pr_err("ipc.img: message queue %d: message type %" PRId64 "\n", id, m->mtype);
			return -EBADMSG;
		}
		memcpy(buf, &m->mtype, sizeof(long));
		if (m->data.len)	/* an empty message has no data pointer */
			memcpy(buf + sizeof(long), m->data.data, m->data.len);
		if (msgsnd(id, buf, m->data.len, IPC_NOWAIT) < 0)
			return log_errno(-errno, "message queue %d: can't put back message %zu", id, i);
	}
	return 0;
}

static int create_mq(MqueueEntry *m)
{
	char qname[NAME_MAX + 2];
	struct mq_attr at = { .mq_maxmsg = m->maxmsg, .mq_msgsize = m->msgsize };
	mqd_t q;
	int ret = 0;

	snprintf(qname, sizeof(qname), "/%s", m->name);
	q = mq_open(qname, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC, 0600, &at);
	if (q == (mqd_t)-1)
		return log_errno(-errno, "can't recreate POSIX message queue %s (%" PRId64 " x %" PRId64 " bytes)",
				 qname, m->maxmsg, m->msgsize);
	for (size_t i = 0; i < m->n_msgs && !ret; i++) {
		const ProtobufCBinaryData *d = &m->msgs[i]->data;

		if (mq_send(q, d->len ? (char *)d->data : "", d->len, m->msgs[i]->prio) < 0)
			ret = log_errno(-errno, "POSIX message queue %s: can't put back message %zu", qname, i);
	}
	if (!ret && fchown(q, m->uid, m->gid) < 0)
		ret = log_errno(-errno, "POSIX message queue %s: chown %u:%u", qname, m->uid, m->gid);
	if (!ret && fchmod(q, m->mode & 07777) < 0)
		ret = log_errno(-errno, "POSIX message queue %s: chmod %o", qname, m->mode);
	mq_close(q);
	return ret;
}

int ipc_restore_create(struct rst_ctx *rc)
{
	struct rst_ipc *ri = rc->ns.ipc;
	int ret = 0;

	for (int i = 0; ri && i < ri->nr && !ret; i++) {
		IpcEntry *e = ri->objs[i];

		if (e->shm)
			ret = create_shm(rc, e->shm);
		else if (e->sem)
			ret = create_sem(e->sem);
		else if (e->msg)
			ret = create_msg(e->msg);
		else
			ret = create_mq(e->mq);
	}
	return ret;
}

/* Segments removed while attached go once every task has attached them again. */
int ipc_restore_finish(struct rst_ctx *rc)
{
	struct rst_ipc *ri = rc->ns.ipc;

	for (int i = 0; ri && i < ri->nr; i++) {
		ShmSegEntry *s = ri->objs[i]->shm;

		if (s && (s->perm->mode & SHM_DEST) && shmctl(s->perm->id, IPC_RMID, NULL) < 0)
			return log_errno(-errno, "SysV segment %d: IPC_RMID", s->perm->id);
	}
	return 0;
}

uint64_t ipc_shm_size(struct rst_ctx *rc, int id)
{
	struct rst_ipc *ri = rc->ns.ipc;

	for (int i = 0; ri && i < ri->nr; i++)
		if (ri->objs[i]->shm && ri->objs[i]->shm->perm->id == id)
			return ri->objs[i]->shm->size;
	return 0;
}
