/* Tests of safe archive extraction: hostile tar.gz files built in-test with
 * libarchive's writer (traversal, absolute paths, links, devices, bombs over
 * the caps, damaged gzip, random bytes) are refused naming the member, and
 * nothing ever lands outside the extraction directory; a good model archive
 * extracts exactly. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* makedev, symlink */
#endif
#include "testutil.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "smserve/archive.h"

typedef struct member {
    const char *name;
    int type;         /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFIFO */
    const char *data; /* regular files */
    const char *link; /* symlink target, or hard link target when hard */
    int hard;
} member_t;

typedef struct fixture {
    char *parent;   /* private temp dir holding dest and the archive */
    char *dest;     /* parent/dest: the extraction directory */
    char *archive;  /* parent/model.tar.gz */
    char evil[128]; /* an absolute path no test may create */
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->parent = tu_mkdtemp();
    f->dest = tu_path(f->parent, "dest");
    f->archive = tu_path(f->parent, "model.tar.gz");
    snprintf(f->evil, sizeof f->evil, "/tmp/sms-archive-evil-%ld", (long)getpid());
    assert_int_equal(mkdir(f->dest, 0700), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tu_rmtree(f->parent);
    unlink(f->evil);
    free(f->parent);
    free(f->dest);
    free(f->archive);
    free(f);
    return 0;
}

static void write_archive(const char *path, const member_t *m, size_t n, int gzip)
{
    struct archive *a = archive_write_new();
    assert_non_null(a);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    if (gzip)
        assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        archive_entry_set_filetype(e, (unsigned)m[i].type);
        archive_entry_set_perm(e, m[i].type == AE_IFDIR ? 0755 : 0644);
        size_t size = m[i].data ? strlen(m[i].data) : 0;
        if (m[i].hard) {
            archive_entry_set_hardlink(e, m[i].link);
            size = 0;
        } else if (m[i].type == AE_IFLNK) {
            archive_entry_set_symlink(e, m[i].link);
        } else if (m[i].type == AE_IFCHR) {
            archive_entry_set_rdev(e, makedev(1, 3));
        }
        archive_entry_set_size(e, m[i].type == AE_IFREG ? (la_int64_t)size : 0);
        assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
        if (m[i].type == AE_IFREG && size)
            assert_int_equal(archive_write_data(a, m[i].data, size), (la_ssize_t)size);
        archive_entry_free(e);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

/* Names directly in dir, sorted into one "a,b," string. */
static void list_dir(const char *dir, char *out, size_t size)
{
    char names[64][64];
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *ent;
    while ((ent = readdir(d)) && n < 64) {
        if (strcmp(ent->d_name, ".") && strcmp(ent->d_name, ".."))
            snprintf(names[n++], sizeof names[0], "%.63s", ent->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strncat(out, names[i], size - strlen(out) - 1);
        strncat(out, ",", size - strlen(out) - 1);
    }
}

/* Nothing but dest and the archive in the parent, and no absolute escape. */
static void assert_contained(const fixture_t *f)
{
    char names[512];
    list_dir(f->parent, names, sizeof names);
    assert_string_equal(names, "dest,model.tar.gz,");
    struct stat st;
    assert_int_not_equal(lstat(f->evil, &st), 0);
}

static sms_archive_limits_t small_limits(void)
{
    sms_archive_limits_t l = {.max_total_bytes = 1000, .max_entries = 8};
    return l;
}

/* Extracts and expects a refusal whose message names the member. */
static void assert_refused(fixture_t *f, const member_t *m, size_t n, sms_archive_limits_t l,
                           const char *member, const char *why)
{
    write_archive(f->archive, m, n, 1);
    sms_error_t err = {0};
    assert_int_equal(sms_archive_extract(f->archive, f->dest, l, &err), -1);
    assert_int_equal(err.status, 422);
    char want[256];
    snprintf(want, sizeof want, "%s: member '%s': ", f->archive, member);
    if (strncmp(err.msg, want, strlen(want)) != 0 || !strstr(err.msg, why))
        fail_msg("message \"%s\" does not name '%s' with '%s'", err.msg, member, why);
    assert_contained(f);
}

static void test_good_archive(void **state)
{
    fixture_t *f = *state;
    const member_t m[] = {
        {"./", AE_IFDIR, NULL, NULL, 0},
        {"./model/", AE_IFDIR, NULL, NULL, 0},
        {"./model/xgboost-model", AE_IFREG, "{\"learner\":{}}", NULL, 0},
        {"./code//inference.py", AE_IFREG, "print(1)\n", NULL, 0},
        {"./empty", AE_IFREG, "", NULL, 0},
        {"./a/./b/c", AE_IFREG, "abc", NULL, 0},
    };
    write_archive(f->archive, m, sizeof m / sizeof m[0], 1);
    sms_error_t err = {0};
    if (sms_archive_extract(f->archive, f->dest, sms_archive_default_limits(), &err) != 0)
        fail_msg("%s", err.msg);
    char *p = tu_path(f->dest, "model/xgboost-model");
    size_t len;
    char *data = tu_read_file(p, &len);
    assert_non_null(data);
    assert_int_equal(len, 14);
    assert_memory_equal(data, "{\"learner\":{}}", 14);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    free(data);
    free(p);
    p = tu_path(f->dest, "model");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    free(p);
    p = tu_path(f->dest, "a/b/c");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 3);
    free(p);
    char names[256];
    list_dir(f->dest, names, sizeof names);
    assert_string_equal(names, "a,code,empty,model,");
    assert_contained(f);
}

static void test_utf8_name(void **state)
{
    fixture_t *f = *state;
    const member_t m[] = {{"mod\xc3\xa8le/xgboost-model", AE_IFREG, "abc", NULL, 0}};
    write_archive(f->archive, m, 1, 1);
    sms_error_t err = {0};
    if (sms_archive_extract(f->archive, f->dest, small_limits(), &err) != 0)
        fail_msg("%s", err.msg);
    char names[256];
    list_dir(f->dest, names, sizeof names);
    assert_string_equal(names, "mod\xc3\xa8le,");
}

static void test_plain_tar(void **state)
{
    fixture_t *f = *state;
    const member_t m[] = {{"xgboost-model", AE_IFREG, "abc", NULL, 0}};
    write_archive(f->archive, m, 1, 0);
    sms_error_t err = {0};
    assert_int_equal(sms_archive_extract(f->archive, f->dest, small_limits(), &err), 0);
    char names[256];
    list_dir(f->dest, names, sizeof names);
    assert_string_equal(names, "xgboost-model,");
}

static void test_traversal(void **state)
{
    fixture_t *f = *state;
    const member_t m[] = {{"ok", AE_IFREG, "x", NULL, 0}, {"../evil", AE_IFREG, "x", NULL, 0}};
    assert_refused(f, m, 2, small_limits(), "../evil", "path escapes the extraction directory");
    const member_t m2[] = {{"a/../../evil", AE_IFREG, "x", NULL, 0}};
    assert_int_equal(sms_remove_tree(f->dest), 0);
    assert_int_equal(mkdir(f->dest, 0700), 0);
    assert_refused(f, m2, 1, small_limits(), "a/../../evil", "escapes");
    const member_t m3[] = {{"a/..", AE_IFDIR, NULL, NULL, 0}};
    assert_refused(f, m3, 1, small_limits(), "a/../", "escapes"); /* pax adds the '/' */
}

static void test_absolute(void **state)
{
    fixture_t *f = *state;
    const member_t m[] = {{f->evil, AE_IFREG, "x", NULL, 0}};
    assert_refused(f, m, 1, small_limits(), f->evil, "absolute");
}

static void test_links(void **state)
{
    fixture_t *f = *state;
    const member_t sym[] = {{"passwd", AE_IFLNK, NULL, "/etc/passwd", 0}};
    assert_refused(f, sym, 1, small_limits(), "passwd", "symbolic link (to '/etc/passwd')");
    const member_t rel[] = {{"model/x", AE_IFLNK, NULL, "../x", 0}};
    assert_refused(f, rel, 1, small_limits(), "model/x", "symbolic link (to '../x')");
    const member_t hard[] = {{"a", AE_IFREG, "x", NULL, 0}, {"b", AE_IFREG, NULL, "a", 1}};
    assert_int_equal(sms_remove_tree(f->dest), 0);
    assert_int_equal(mkdir(f->dest, 0700), 0);
    assert_refused(f, hard, 2, small_limits(), "b", "hard link (to 'a')");
    const member_t hard_out[] = {{"c", AE_IFREG, NULL, "/etc/passwd", 1}};
    assert_int_equal(sms_remove_tree(f->dest), 0);
    assert_int_equal(mkdir(f->dest, 0700), 0);
    assert_refused(f, hard_out, 1, small_limits(), "c", "hard link");
}

static void test_special_files(void **state)
{
    fixture_t *f = *state;
    const member_t chr[] = {{"null", AE_IFCHR, NULL, NULL, 0}};
    assert_refused(f, chr, 1, small_limits(), "null", "character device");
    const member_t fifo[] = {{"pipe", AE_IFIFO, NULL, NULL, 0}};
    assert_refused(f, fifo, 1, small_limits(), "pipe", "FIFO");
    const member_t blk[] = {{"disk", AE_IFBLK, NULL, NULL, 0}};
    assert_refused(f, blk, 1, small_limits(), "disk", "block device");
}

static void test_caps(void **state)
{
    fixture_t *f = *state;
    member_t many[12];
    char names[12][16];
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof names[i], "f%02d", i);
        many[i] = (member_t){names[i], AE_IFREG, "x", NULL, 0};
    }
    assert_refused(f, many, 12, small_limits(), "f08", "more than the cap of 8 entries");

    assert_int_equal(sms_remove_tree(f->dest), 0);
    assert_int_equal(mkdir(f->dest, 0700), 0);
    char *big = malloc(1201);
    memset(big, 'z', 1200);
    big[1200] = '\0';
    const member_t one_big[] = {{"big", AE_IFREG, big, NULL, 0}};
    assert_refused(f, one_big, 1, small_limits(), "big", "cap of 1000 bytes");
    /* refused from the declared size: nothing was written */
    char list[64];
    list_dir(f->dest, list, sizeof list);
    assert_string_equal(list, "");

    assert_int_equal(sms_remove_tree(f->dest), 0);
    assert_int_equal(mkdir(f->dest, 0700), 0);
    big[400] = '\0';
    const member_t three[] = {{"a", AE_IFREG, big, NULL, 0},
                              {"b", AE_IFREG, big, NULL, 0},
                              {"c", AE_IFREG, big, NULL, 0}};
    assert_refused(f, three, 3, small_limits(), "c", "cap of 1000 bytes");
    free(big);
}

static void test_duplicates_and_clashes(void **state)
{
    fixture_t *f = *state;
    const member_t dup[] = {{"m", AE_IFREG, "1", NULL, 0}, {"./m", AE_IFREG, "2", NULL, 0}};
    assert_refused(f, dup, 2, small_limits(), "./m", "appears twice");
    assert_int_equal(sms_remove_tree(f->dest), 0);
    assert_int_equal(mkdir(f->dest, 0700), 0);
    const member_t clash[] = {{"m", AE_IFREG, "1", NULL, 0}, {"m/x", AE_IFREG, "2", NULL, 0}};
    assert_refused(f, clash, 2, small_limits(), "m/x", "in the way");
}

static void test_odd_names(void **state)
{
    fixture_t *f = *state;
    const member_t nl[] = {{"bad\nname/..", AE_IFREG, "1", NULL, 0}};
    write_archive(f->archive, nl, 1, 1);
    sms_error_t err = {0};
    assert_int_equal(sms_archive_extract(f->archive, f->dest, small_limits(), &err), -1);
    assert_null(strchr(err.msg, '\n'));
    assert_non_null(strstr(err.msg, "bad\\x0aname/.."));
    const member_t dot[] = {{".", AE_IFREG, "1", NULL, 0}};
    assert_refused(f, dot, 1, small_limits(), ".", "without a name");
}

static void test_damaged_input(void **state)
{
    fixture_t *f = *state;
    char *good = tu_path(f->parent, "good.tar.gz");
    const member_t m[] = {{"./model/xgboost-model", AE_IFREG,
                           "0123456789abcdef0123456789abcdef0123456789abcdef", NULL, 0}};
    write_archive(good, m, 1, 1);
    size_t len;
    char *bytes = tu_read_file(good, &len);
    assert_non_null(bytes);
    unlink(good);
    free(good);

    /* every truncation: refused (or, at full length, extracted), never escaping */
    for (size_t n = 0; n <= len; n++) {
        assert_int_equal(tu_write_file(f->archive, bytes, n), 0);
        sms_error_t err = {0};
        int rc = sms_archive_extract(f->archive, f->dest, small_limits(), &err);
        if (n < len - 8) /* the gzip trailer is not needed to read the data */
            assert_int_equal(rc, -1);
        if (rc < 0) {
            assert_int_equal(err.status, 422);
            assert_true(strncmp(err.msg, f->archive, strlen(f->archive)) == 0);
        }
        assert_contained(f);
        assert_int_equal(sms_remove_tree(f->dest), 0);
        assert_int_equal(mkdir(f->dest, 0700), 0);
    }
    /* corrupted bytes */
    srand(99);
    for (int iter = 0; iter < 300; iter++) {
        char *c = malloc(len);
        memcpy(c, bytes, len);
        for (int k = 0; k < 1 + rand() % 3; k++)
            c[10 + (size_t)rand() % (len - 10)] ^= (char)(1 + rand() % 255);
        assert_int_equal(tu_write_file(f->archive, c, len), 0);
        sms_error_t err = {0};
        sms_archive_extract(f->archive, f->dest, small_limits(), &err);
        assert_contained(f);
        assert_int_equal(sms_remove_tree(f->dest), 0);
        assert_int_equal(mkdir(f->dest, 0700), 0);
        free(c);
    }
    free(bytes);

    unsigned char noise[4096];
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (unsigned char)rand();
    assert_int_equal(tu_write_file(f->archive, noise, sizeof noise), 0);
    sms_error_t err = {0};
    assert_int_equal(sms_archive_extract(f->archive, f->dest, small_limits(), &err), -1);
    assert_int_equal(err.status, 422);
    assert_non_null(strstr(err.msg, "not a readable tar"));
    assert_contained(f);
}

static void test_caller_errors(void **state)
{
    fixture_t *f = *state;
    sms_error_t err = {0};
    char *missing = tu_path(f->parent, "missing.tar.gz");
    assert_int_equal(sms_archive_extract(missing, f->dest, small_limits(), &err), -1);
    assert_int_equal(err.status, 500);
    free(missing);
    const member_t m[] = {{"x", AE_IFREG, "1", NULL, 0}};
    write_archive(f->archive, m, 1, 1);
    char *x = tu_path(f->dest, "already-here");
    assert_int_equal(tu_write_file(x, "1", 1), 0);
    assert_int_equal(sms_archive_extract(f->archive, f->dest, small_limits(), &err), -1);
    assert_non_null(strstr(err.msg, "not empty"));
    free(x);
    assert_int_equal(sms_archive_extract(f->archive, f->archive, small_limits(), &err), -1);
    sms_archive_limits_t d = sms_archive_default_limits();
    assert_true(d.max_total_bytes == (size_t)4 << 30);
    assert_int_equal(d.max_entries, 10000);
}

static void test_remove_tree_keeps_link_targets(void **state)
{
    fixture_t *f = *state;
    char *outside = tu_path(f->parent, "outside");
    assert_int_equal(mkdir(outside, 0700), 0);
    char *keep = tu_path(outside, "keep");
    assert_int_equal(tu_write_file(keep, "k", 1), 0);
    char *deep = tu_path(f->dest, "a");
    assert_int_equal(mkdir(deep, 0700), 0);
    char *deeper = tu_path(deep, "b");
    assert_int_equal(mkdir(deeper, 0700), 0);
    char *file = tu_path(deeper, "f");
    assert_int_equal(tu_write_file(file, "f", 1), 0);
    char *link = tu_path(deep, "link");
    assert_int_equal(symlink(outside, link), 0);

    assert_int_equal(sms_remove_tree(f->dest), 0);
    struct stat st;
    assert_int_not_equal(lstat(f->dest, &st), 0);
    assert_int_equal(stat(keep, &st), 0);
    assert_int_equal(sms_remove_tree(f->dest), 0); /* already gone is fine */
    assert_int_equal(mkdir(f->dest, 0700), 0);
    free(outside);
    free(keep);
    free(deep);
    free(deeper);
    free(file);
    free(link);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_archive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_tar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traversal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absolute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_and_clashes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caller_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_tree_keeps_link_targets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
