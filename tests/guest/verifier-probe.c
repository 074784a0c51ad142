/* verifier-probe: diagnosis helper for the guest-kernel test.
 *
 * Loads every program of a BPF object on its own, with the given .rodata
 * values (as sonde's loader sets them), and prints per program whether the
 * kernel accepted it and how many instructions the verifier processed; for a
 * rejected program it prints the tail of the verifier log, which sonde's own
 * log cannot show whole.
 *
 *   verifier-probe OBJECT.bpf.o [NAME=VALUE ...]
 *
 * Output lines: "VERIFIER prog=NAME result=ok verified_insns=N" or
 * "VERIFIER prog=NAME result=rejected error=..." followed by
 * "VERIFIER-LOG prog=NAME | <line>". Exit status: number of rejected programs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#define LOG_SIZE (64u << 20)
#define TAIL_LINES 40

static char *log_buf;

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level; (void)fmt; (void)ap;
	return 0;
}

/* Writes an integer into a const volatile global of .rodata, found via BTF. */
static int set_rodata(struct bpf_object *obj, const char *name, unsigned long long val)
{
	const struct btf *btf = bpf_object__btf(obj);
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec;
	struct bpf_map *map, *ro = NULL;
	size_t size;
	char *data;
	int id;

	bpf_object__for_each_map(map, obj) {
		const char *n = bpf_map__name(map);
		size_t l = strlen(n);

		if (l >= 7 && strcmp(n + l - 7, ".rodata") == 0)
			ro = map;
	}
	if (!btf || !ro)
		return -ENOENT;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return -ENOENT;
	sec = btf__type_by_id(btf, id);
	data = (char *)bpf_map__initial_value(ro, &size);	/* writable until load */
	if (!data)
		return -ENOENT;
	vs = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *v = btf__type_by_id(btf, vs->type);

		if (strcmp(btf__name_by_offset(btf, v->name_off), name) != 0)
			continue;
		if (vs->offset + vs->size > size || vs->size > sizeof(val))
			return -ERANGE;
		memcpy(data + vs->offset, &val, vs->size);	/* little endian */
		return 0;
	}
	return -ENOENT;
}

static struct bpf_object *open_with(const char *path, int argc, char **argv)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);

	if (!obj) {
		fprintf(stderr, "verifier-probe: cannot open %s: %s\n", path, strerror(errno));
		exit(100);
	}
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		char name[128];
		int err;

		if (!eq || eq - argv[i] >= (int)sizeof(name)) {
			fprintf(stderr, "verifier-probe: expected NAME=VALUE, got %s\n", argv[i]);
			exit(100);
		}
		snprintf(name, sizeof(name), "%.*s", (int)(eq - argv[i]), argv[i]);
		err = set_rodata(obj, name, strtoull(eq + 1, NULL, 0));
		if (err) {
			fprintf(stderr, "verifier-probe: cannot set %s: %s\n", name, strerror(-err));
			exit(100);
		}
	}
	return obj;
}

static void print_tail(const char *prog, const char *log)
{
	const char *p = log + strlen(log);
	int lines = 0;

	while (p > log && lines <= TAIL_LINES)
		if (*--p == '\n')
			lines++;
	if (p > log)
		p++;
	while (*p) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);

		if (len)
			printf("VERIFIER-LOG prog=%s | %.*s\n", prog, len, p);
		p += len + (nl ? 1 : 0);
	}
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	int nprogs = 0, rejected = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s OBJECT.bpf.o [NAME=VALUE ...]\n", argv[0]);
		return 100;
	}
	libbpf_set_print(quiet);
	log_buf = malloc(LOG_SIZE);
	if (!log_buf)
		return 100;

	obj = open_with(argv[1], argc - 2, argv + 2);
	bpf_object__for_each_program(prog, obj)
		nprogs++;
	bpf_object__close(obj);

	for (int i = 0; i < nprogs; i++) {
		char name[64] = "?";
		int k = 0, err;

		/* First without a log (fast); again with the log only if rejected. */
		for (int pass = 0; pass < 2; pass++) {
			struct bpf_program *target = NULL;

			obj = open_with(argv[1], argc - 2, argv + 2);
			k = 0;
			bpf_object__for_each_program(prog, obj) {
				bpf_program__set_autoload(prog, k == i);
				if (k++ == i)
					target = prog;
			}
			snprintf(name, sizeof(name), "%s", bpf_program__name(target));
			log_buf[0] = 0;
			if (pass == 1) {
				bpf_program__set_log_buf(target, log_buf, LOG_SIZE);
				bpf_program__set_log_level(target, 1);
			}
			err = bpf_object__load(obj);
			if (!err) {
				struct bpf_prog_info info;
				__u32 len = sizeof(info);

				memset(&info, 0, sizeof(info));
				if (bpf_obj_get_info_by_fd(bpf_program__fd(target), &info, &len) == 0)
					printf("VERIFIER prog=%s result=ok verified_insns=%u\n", name,
					       info.verified_insns);
				else
					printf("VERIFIER prog=%s result=ok verified_insns=?\n", name);
				bpf_object__close(obj);
				break;
			}
			if (pass == 1) {
				printf("VERIFIER prog=%s result=rejected error=%s\n", name, strerror(-err));
				print_tail(name, log_buf);
				rejected++;
			}
			bpf_object__close(obj);
		}
	}
	return rejected;
}
