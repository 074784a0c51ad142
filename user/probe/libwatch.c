/* libwatch: finds library files (by basename prefix) and statically linked
 * executables (by ELF symbol) mapped by host processes, deduplicated by
 * (st_dev, st_ino) in a fixed-size table, and reports each file once. */
#define _GNU_SOURCE	/* memrchr */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "probe/libwatch.h"

#define WATCH_MAX 16		/* registered prefixes + symbols */
#define WATCH_STR_MAX 64
#define FILES_MAX 4096		/* distinct files remembered (power of two) */
#define TRIES_MAX 3		/* failed attaches of one file before giving up on it */
#define LINE_MAX_LEN 4096	/* maps lines longer than this (paths near PATH_MAX) are skipped */

enum watch_kind { WATCH_PREFIX = 1, WATCH_SYMBOL = 2 };

struct watch {
	enum watch_kind kind;
	char s[WATCH_STR_MAX];
	size_t len;
	libwatch_fn fn;
	void *arg;
};

/* One distinct file. done: watchers that no longer need to see it (attached,
 * not matching, or given up). */
struct file_ent {
	uint64_t dev, ino;
	uint32_t done;
	uint32_t gen;		/* scan that last called fn: one try per sighting, not per mapping */
	uint8_t used;
	uint8_t elf_checked;
	uint8_t tries[WATCH_MAX];
};

struct libwatch {
	struct watch w[WATCH_MAX];
	unsigned int nw;
	uint32_t sym_mask;		/* watchers of kind WATCH_SYMBOL */
	struct file_ent *files;		/* open addressing, FILES_MAX slots */
	size_t nfiles;
	uint32_t gen;			/* bumped by every libwatch__scan_pid */
	struct libwatch_stats st;
};

struct libwatch *libwatch__new(void)
{
	struct libwatch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	elf_version(EV_CURRENT);	/* libelf refuses every call before this */
	w->files = calloc(FILES_MAX, sizeof(*w->files));
	if (!w->files) {
		free(w);
		return NULL;
	}
	return w;
}

void libwatch__free(struct libwatch *w)
{
	if (!w)
		return;
	free(w->files);
	free(w);
}

static int watch__add(struct libwatch *w, enum watch_kind kind, const char *s, libwatch_fn fn,
		      void *arg)
{
	struct watch *x;
	size_t len = s ? strlen(s) : 0;

	if (!fn || len == 0 || len >= WATCH_STR_MAX)
		return -EINVAL;
	if (w->nw == WATCH_MAX)
		return -ENOSPC;
	x = &w->w[w->nw];
	x->kind = kind;
	memcpy(x->s, s, len + 1);
	x->len = len;
	x->fn = fn;
	x->arg = arg;
	if (kind == WATCH_SYMBOL)
		w->sym_mask |= 1u << w->nw;
	w->nw++;
	return 0;
}

int libwatch__add(struct libwatch *w, const char *prefix, libwatch_fn fn, void *arg)
{
	return watch__add(w, WATCH_PREFIX, prefix, fn, arg);
}

int libwatch__add_exe_symbol(struct libwatch *w, const char *sym, libwatch_fn fn, void *arg)
{
	return watch__add(w, WATCH_SYMBOL, sym, fn, arg);
}

void libwatch__forget(struct libwatch *w, void *arg)
{
	for (unsigned int i = 0; i < w->nw; i++)
		if (w->w[i].arg == arg)
			w->w[i].fn = NULL;
}

const struct libwatch_stats *libwatch__stats(const struct libwatch *w)
{
	return &w->st;
}

/* Finds the file's slot, creating it; NULL when the table is full. */
static struct file_ent *file__get(struct libwatch *w, uint64_t dev, uint64_t ino)
{
	uint64_t h = (dev * 0x9e3779b97f4a7c15ULL) ^ (ino * 0xbf58476d1ce4e5b9ULL);
	size_t i = (size_t)(h ^ (h >> 31)) & (FILES_MAX - 1);

	for (size_t n = 0; n < FILES_MAX; n++, i = (i + 1) & (FILES_MAX - 1)) {
		struct file_ent *f = &w->files[i];

		if (!f->used) {
			/* keep one slot in eight free so that misses stay short */
			if (w->nfiles >= FILES_MAX - FILES_MAX / 8) {
				w->st.files_dropped++;
				return NULL;
			}
			f->used = 1;
			f->dev = dev;
			f->ino = ino;
			w->nfiles++;
			w->st.files_seen++;
			return f;
		}
		if (f->dev == dev && f->ino == ino)
			return f;
	}
	w->st.files_dropped++;
	return NULL;
}

static unsigned long hex_field(const char **p, char end, bool *ok)
{
	unsigned long v = 0;
	const char *s = *p;
	int n = 0;

	while (isxdigit((unsigned char)*s) && n < 16) {
		v = v * 16 + (unsigned long)(isdigit((unsigned char)*s) ? *s - '0'
							  : (tolower((unsigned char)*s) - 'a' + 10));
		s++;
		n++;
	}
	if (n == 0 || *s != end) {
		*ok = false;
		return 0;	/* *p stays put: never step over the terminating NUL */
	}
	*p = s + 1;
	return v;
}

/* Format (proc(5)): "start-end perms offset major:minor inode   path". */
int libwatch__parse_maps_line(const char *line, struct libwatch_mapping *m)
{
	const char *p = line, *perms;
	bool ok = true;
	unsigned long major, minor;
	uint64_t ino = 0;
	size_t len;
	int n = 0;

	hex_field(&p, '-', &ok);
	if (ok)
		hex_field(&p, ' ', &ok);
	if (!ok)
		return -1;
	perms = p;
	if (strnlen(perms, 5) < 5 || perms[4] != ' ')
		return -1;
	p = perms + 5;
	hex_field(&p, ' ', &ok);		/* offset */
	major = ok ? hex_field(&p, ':', &ok) : 0;
	minor = ok ? hex_field(&p, ' ', &ok) : 0;
	if (!ok)
		return -1;
	while (isdigit((unsigned char)*p) && n < 20) {
		ino = ino * 10 + (uint64_t)(*p - '0');
		p++;
		n++;
	}
	if (n == 0 || (*p != ' ' && *p != '\n' && *p != 0))
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '/' || ino == 0)
		return -1;
	len = strcspn(p, "\n");
	/* a file replaced on disk (package upgrade) keeps its mapping under this suffix */
	if (len >= 10 && memcmp(p + len - 10, " (deleted)", 10) == 0)
		return -1;
	m->dev = makedev(major, minor);
	m->ino = ino;
	m->path = p;
	m->path_len = len;
	m->exec = perms[2] == 'x';
	return 0;
}

static void call(struct libwatch *w, struct file_ent *f, unsigned int i, const char *path,
		 uint32_t pid)
{
	if (!w->w[i].fn) {	/* forgotten */
		f->done |= 1u << i;
		return;
	}
	w->st.calls++;
	if (w->w[i].fn(w->w[i].arg, path, pid) == 0) {
		f->done |= 1u << i;
		return;
	}
	w->st.call_failures++;
	if (++f->tries[i] >= TRIES_MAX)
		f->done |= 1u << i;
}

static void on_mapping(struct libwatch *w, uint32_t pid, const struct libwatch_mapping *m)
{
	const char *base = memrchr(m->path, '/', m->path_len);
	size_t blen;
	uint32_t want = 0;
	struct file_ent *f;
	char path[LINE_MAX_LEN + 64];

	base = base ? base + 1 : m->path;
	blen = m->path_len - (size_t)(base - m->path);
	for (unsigned int i = 0; i < w->nw; i++)
		if (w->w[i].kind == WATCH_PREFIX && blen >= w->w[i].len &&
		    memcmp(base, w->w[i].s, w->w[i].len) == 0)
			want |= 1u << i;
	if (!want)
		return;
	f = file__get(w, m->dev, m->ino);
	if (!f || !(want & ~f->done) || f->gen == w->gen)
		return;
	f->gen = w->gen;
	snprintf(path, sizeof(path), "/proc/%u/root%.*s", pid, (int)m->path_len, m->path);
	for (unsigned int i = 0; i < w->nw; i++)
		if ((want & ~f->done) & (1u << i))
			call(w, f, i, path, pid);
}

/* Bits of the symbol watchers whose symbol the ELF file defines. */
static uint32_t elf__symbols(struct libwatch *w, const char *path)
{
	uint32_t found = 0;
	Elf_Scn *scn = NULL;
	Elf *e;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF)
		goto out;
	while ((scn = elf_nextscn(e, scn)) && found != w->sym_mask) {
		GElf_Shdr sh;
		Elf_Data *d;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
		    sh.sh_entsize == 0)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		n = sh.sh_size / sh.sh_entsize;
		for (size_t k = 0; k < n; k++) {
			GElf_Sym sym;
			const char *name;

			if (!gelf_getsym(d, (int)k, &sym) || sym.st_shndx == SHN_UNDEF ||
			    sym.st_value == 0 || GELF_ST_TYPE(sym.st_info) != STT_FUNC)
				continue;
			name = elf_strptr(e, sh.sh_link, sym.st_name);
			if (!name)
				continue;
			for (unsigned int i = 0; i < w->nw; i++)
				if ((w->sym_mask & (1u << i)) && strcmp(name, w->w[i].s) == 0)
					found |= 1u << i;
		}
	}
out:
	if (e)
		elf_end(e);
	close(fd);
	return found;
}

static void scan_exe(struct libwatch *w, uint32_t pid)
{
	char link[64], target[LINE_MAX_LEN], path[LINE_MAX_LEN + 64];
	struct file_ent *f;
	struct stat st;
	ssize_t n;
	uint32_t has;

	snprintf(link, sizeof(link), "/proc/%u/exe", pid);
	if (stat(link, &st) || !S_ISREG(st.st_mode))
		return;		/* kernel thread, or gone */
	f = file__get(w, st.st_dev, st.st_ino);
	if (!f || !(w->sym_mask & ~f->done))
		return;
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0 || target[0] != '/')
		return;
	target[n] = 0;
	snprintf(path, sizeof(path), "/proc/%u/root%s", pid, target);
	if (!f->elf_checked) {
		f->elf_checked = 1;
		w->st.exes_checked++;
		has = elf__symbols(w, link);
		/* executables without the symbol never need another look */
		f->done |= w->sym_mask & ~has;
	}
	for (unsigned int i = 0; i < w->nw; i++)
		if ((w->sym_mask & ~f->done) & (1u << i))
			call(w, f, i, path, pid);
}

void libwatch__scan_pid(struct libwatch *w, uint32_t pid)
{
	char name[64], line[LINE_MAX_LEN];
	struct libwatch_mapping m;
	bool skipping = false;
	FILE *fp;

	if (w->nw == 0 || pid == 0)
		return;
	w->gen++;
	if (w->sym_mask)
		scan_exe(w, pid);
	snprintf(name, sizeof(name), "/proc/%u/maps", pid);
	fp = fopen(name, "re");
	if (!fp)
		return;
	w->st.scans++;
	while (fgets(line, sizeof(line), fp)) {
		bool whole = strchr(line, '\n') != NULL;

		/* the tail of an over-long line is not a line of its own */
		if (!skipping && libwatch__parse_maps_line(line, &m) == 0 && whole)
			on_mapping(w, pid, &m);
		skipping = !whole;
	}
	fclose(fp);
}

void libwatch__scan_all(struct libwatch *w)
{
	struct dirent *de;
	DIR *d;

	if (w->nw == 0)
		return;
	d = opendir("/proc");
	if (!d)
		return;
	while ((de = readdir(d))) {
		char *end;
		unsigned long pid = strtoul(de->d_name, &end, 10);

		if (*end == 0 && pid > 0 && pid <= UINT32_MAX)
			libwatch__scan_pid(w, (uint32_t)pid);
	}
	closedir(d);
}
