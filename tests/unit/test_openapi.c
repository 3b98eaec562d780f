/*
 * test_openapi.c - src/api/openapi.json (as served: api_openapi()) against
 * the server's route table (api_routes()).
 *
 *   - every route has its path and method in the document, and every
 *     path and method of the document is a route: either side changed
 *     alone fails, and the failure lists exactly what is missing where;
 *   - every {param} of a path is declared as a required path parameter,
 *     and every path parameter declared is in the path;
 *   - every operation has responses, each with a description; an
 *     authenticated operation has a 401, the public ones say
 *     "security": [] and are the API_PUBLIC routes;
 *   - every "$ref" resolves in the document.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <jansson.h>

#include "api/api.h"

static const char *const op_methods[] = { "get", "put", "post", "delete",
	"options", "head", "patch", "trace" };

static json_t *doc;

/* problems found by a test: one per line */
struct report {
	char *text;
	size_t len, n;
};

static void
report_add(struct report *rp, const char *fmt, ...)
{
	va_list ap;
	char line[1024];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	rp->text = realloc(rp->text, rp->len + (size_t)n + 2);
	assert_non_null(rp->text);
	memcpy(rp->text + rp->len, line, (size_t)n);
	rp->len += (size_t)n;
	rp->text[rp->len++] = '\n';
	rp->text[rp->len] = '\0';
	rp->n++;
}

/* report_end - print the problems and fail when there are any */
static void
report_end(struct report *rp, const char *what)
{
	if (rp->n != 0) {
		/* a line at a time: cmocka's message buffer is short */
		print_error("%s: %zu problem(s):\n", what, rp->n);
		for (char *l = rp->text, *nl; (nl = strchr(l, '\n')) != NULL;
		     l = nl + 1)
			print_error("%.*s\n", (int)(nl - l), l);
		free(rp->text);
		fail_msg("%s: %zu problem(s), listed above", what, rp->n);
	}
	free(rp->text);
}

static int
setup(void **state)
{
	json_error_t je;

	(void)state;
	doc = json_loads(api_openapi(), 0, &je);
	if (doc == NULL) {
		print_error("openapi.json: line %d column %d: %s\n", je.line,
		    je.column, je.text);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	json_decref(doc);
	doc = NULL;
	return 0;
}

/* resolve - the value a local $ref ("#/a/b~1c") names, NULL if none */
static json_t *
resolve(const char *ref)
{
	json_t *v = doc;
	const char *p;

	if (strncmp(ref, "#/", 2) != 0)
		return NULL;
	p = ref + 2;
	while (v != NULL) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char *tok = malloc(n + 1), *o = tok;

		assert_non_null(tok);
		for (size_t i = 0; i < n; i++) {
			if (p[i] == '~' && i + 1 < n && p[i + 1] == '1') {
				*o++ = '/';
				i++;
			} else if (p[i] == '~' && i + 1 < n && p[i + 1] == '0') {
				*o++ = '~';
				i++;
			} else
				*o++ = p[i];
		}
		*o = '\0';
		if (json_is_object(v))
			v = json_object_get(v, tok);
		else if (json_is_array(v)) {
			char *e;
			long k = strtol(tok, &e, 10);

			v = (*tok != '\0' && *e == '\0' && k >= 0)
			    ? json_array_get(v, (size_t)k)
			    : NULL;
		} else
			v = NULL;
		free(tok);
		if (end == NULL)
			break;
		p = end + 1;
	}
	return v;
}

/* deref - v, or what its $ref names (one level) */
static json_t *
deref(json_t *v)
{
	json_t *r = json_object_get(v, "$ref");

	return json_is_string(r) ? resolve(json_string_value(r)) : v;
}

static bool
is_op_method(const char *m)
{
	for (size_t i = 0; i < sizeof(op_methods) / sizeof(*op_methods); i++)
		if (strcmp(m, op_methods[i]) == 0)
			return true;
	return false;
}

static json_t *
doc_op(const char *path, const char *method)
{
	char lower[16];
	size_t i;

	for (i = 0; method[i] != '\0' && i + 1 < sizeof(lower); i++)
		lower[i] = (char)(method[i] | 0x20);
	lower[i] = '\0';
	return json_object_get(
	    json_object_get(json_object_get(doc, "paths"), path), lower);
}

static const struct api_route *
find_route(const char *path, const char *method)
{
	size_t n;
	const struct api_route *rt = api_routes(&n);

	for (size_t i = 0; i < n; i++)
		if (strcmp(rt[i].pattern, path) == 0 &&
		    strcasecmp(rt[i].method, method) == 0)
			return &rt[i];
	return NULL;
}

static void
test_document(void **state)
{
	(void)state;
	assert_non_null(doc);
	assert_string_equal(
	    json_string_value(json_object_get(doc, "openapi")), "3.0.3");
	assert_true(json_is_object(json_object_get(doc, "info")));
	assert_true(json_is_object(json_object_get(doc, "paths")));
	assert_non_null(resolve("#/components/securitySchemes/bearer"));
	for (const char *const *s = (const char *const[]) { "List", "Field",
		 "Contact", "Subscription", "Segment", "Suppression", "Source",
		 "Import", "Account", "Error", NULL };
	     *s != NULL; s++) {
		char ref[128];

		snprintf(ref, sizeof(ref), "#/components/schemas/%s", *s);
		if (resolve(ref) == NULL)
			fail_msg("no schema %s", ref);
	}
}

static void
test_routes_match(void **state)
{
	struct report rp = { 0 };
	size_t n, ndoc = 0;
	const struct api_route *rt = api_routes(&n);
	const char *path, *m;
	json_t *item, *op;

	(void)state;
	assert_true(n > 0);
	assert_null(rt[n].method);
	for (size_t i = 0; i < n; i++) {
		if (doc_op(rt[i].pattern, rt[i].method) == NULL)
			report_add(&rp,
			    "  route of the server, not in openapi.json: "
			    "%s %s",
			    rt[i].method, rt[i].pattern);
		for (size_t j = 0; j < i; j++)
			if (strcmp(rt[i].pattern, rt[j].pattern) == 0 &&
			    strcmp(rt[i].method, rt[j].method) == 0)
				report_add(&rp, "  route twice: %s %s",
				    rt[i].method, rt[i].pattern);
	}
	json_object_foreach(json_object_get(doc, "paths"), path, item)
	{
		json_object_foreach(item, m, op)
		{
			char up[16];
			size_t k;

			if (!is_op_method(m))
				continue;
			ndoc++;
			for (k = 0; m[k] != '\0' && k + 1 < sizeof(up); k++)
				up[k] = (char)(m[k] & ~0x20);
			up[k] = '\0';
			if (find_route(path, m) == NULL)
				report_add(&rp,
				    "  in openapi.json, not a route of the "
				    "server: %s %s",
				    up, path);
		}
	}
	if (rp.n != 0)
		print_error("server: %zu routes, openapi.json: %zu "
			    "operations\n",
		    n, ndoc);
	report_end(&rp, "routes vs openapi.json");
}

/* template_has - whether path has "{name}" */
static bool
template_has(const char *path, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strchr(path, '{'); p != NULL;
	     p = strchr(p + 1, '{'))
		if (strncmp(p + 1, name, n) == 0 && p[1 + n] == '}')
			return true;
	return false;
}

/* param_declared - whether params (an array, may be NULL) declares name
   as a required path parameter */
static bool
param_declared(json_t *params, const char *name)
{
	size_t i;
	json_t *p;

	json_array_foreach(params, i, p)
	{
		p = deref(p);
		if (json_is_string(json_object_get(p, "name")) &&
		    strcmp(json_string_value(json_object_get(p, "name")),
			name) == 0 &&
		    json_is_string(json_object_get(p, "in")) &&
		    strcmp(json_string_value(json_object_get(p, "in")),
			"path") == 0 &&
		    json_is_true(json_object_get(p, "required")))
			return true;
	}
	return false;
}

static void
check_declared_in_path(struct report *rp, const char *path, const char *m,
    json_t *params)
{
	size_t i;
	json_t *p;

	if (params != NULL && !json_is_array(params)) {
		report_add(rp, "  %s %s: parameters is not an array", m, path);
		return;
	}
	json_array_foreach(params, i, p)
	{
		json_t *d = deref(p);
		const char *in = json_string_value(json_object_get(d, "in"));
		const char *name =
		    json_string_value(json_object_get(d, "name"));

		if (d == NULL || in == NULL || name == NULL) {
			report_add(rp,
			    "  %s %s: parameter %zu has no name or in", m,
			    path, i);
			continue;
		}
		if (strcmp(in, "path") == 0 && !template_has(path, name))
			report_add(rp,
			    "  %s %s: path parameter '%s' is not in the path",
			    m, path, name);
	}
}

static void
test_path_params(void **state)
{
	struct report rp = { 0 };
	const char *path, *m;
	json_t *item, *op;

	(void)state;
	json_object_foreach(json_object_get(doc, "paths"), path, item)
	{
		json_t *common = json_object_get(item, "parameters");

		check_declared_in_path(&rp, path, "(path item)", common);
		json_object_foreach(item, m, op)
		{
			json_t *params = json_object_get(op, "parameters");

			if (!is_op_method(m))
				continue;
			check_declared_in_path(&rp, path, m, params);
			for (const char *p = strchr(path, '{'); p != NULL;
			     p = strchr(p + 1, '{')) {
				const char *e = strchr(p, '}');
				char name[64];

				if (e == NULL || (size_t)(e - p) > sizeof(name)) {
					report_add(&rp, "  %s: bad template",
					    path);
					break;
				}
				memcpy(name, p + 1, (size_t)(e - p - 1));
				name[e - p - 1] = '\0';
				if (!param_declared(params, name) &&
				    !param_declared(common, name))
					report_add(&rp,
					    "  %s %s: {%s} is not declared as "
					    "a required path parameter",
					    m, path, name);
			}
		}
	}
	report_end(&rp, "path parameters");
}

static void
test_responses(void **state)
{
	struct report rp = { 0 };
	const char *path, *m, *code;
	json_t *item, *op, *resp;
	json_t *global = json_object_get(doc, "security");

	(void)state;
	json_object_foreach(json_object_get(doc, "paths"), path, item)
	{
		json_object_foreach(item, m, op)
		{
			json_t *responses, *sec;
			const struct api_route *rt;
			bool public;

			if (!is_op_method(m))
				continue;
			responses = json_object_get(op, "responses");
			if (!json_is_object(responses) ||
			    json_object_size(responses) == 0) {
				report_add(&rp, "  %s %s: no responses", m,
				    path);
				continue;
			}
			json_object_foreach(responses, code, resp)
			{
				json_t *d = deref(resp);

				if (!json_is_string(
					json_object_get(d, "description")))
					report_add(&rp,
					    "  %s %s: response %s has no "
					    "description",
					    m, path, code);
			}
			sec = json_object_get(op, "security");
			if (sec == NULL)
				sec = global;
			public = !json_is_array(sec) || json_array_size(sec) == 0;
			if (!public && json_object_get(responses, "401") == NULL)
				report_add(&rp,
				    "  %s %s: authenticated but no 401", m,
				    path);
			if (!public && json_object_get(responses, "403") == NULL)
				report_add(&rp,
				    "  %s %s: authenticated but no 403", m,
				    path);
			rt = find_route(path, m);
			if (rt != NULL && public != (rt->scope == API_PUBLIC))
				report_add(&rp,
				    "  %s %s: the server's route is %s, the "
				    "document says %s",
				    m, path,
				    rt->scope == API_PUBLIC ? "public"
							    : "authenticated",
				    public ? "public" : "authenticated");
		}
	}
	report_end(&rp, "responses");
}

static void
walk_refs(struct report *rp, json_t *v, const char *where)
{
	const char *k;
	json_t *x;
	size_t i;

	if (json_is_object(v)) {
		json_t *ref = json_object_get(v, "$ref");

		if (ref != NULL) {
			if (!json_is_string(ref))
				report_add(rp, "  %s: $ref is not a string",
				    where);
			else if (resolve(json_string_value(ref)) == NULL)
				report_add(rp, "  %s: $ref %s does not resolve",
				    where, json_string_value(ref));
		}
		json_object_foreach(v, k, x)
		{
			char sub[512];

			if (strcmp(k, "$ref") == 0)
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", where, k);
			walk_refs(rp, x, sub);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
		{
			char sub[512];

			snprintf(sub, sizeof(sub), "%s/%zu", where, i);
			walk_refs(rp, x, sub);
		}
	}
}

static void
test_refs(void **state)
{
	struct report rp = { 0 };

	(void)state;
	walk_refs(&rp, doc, "#");
	report_end(&rp, "$ref");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_document),
		cmocka_unit_test(test_routes_match),
		cmocka_unit_test(test_path_params),
		cmocka_unit_test(test_responses),
		cmocka_unit_test(test_refs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
