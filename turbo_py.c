/* turbo_py.c - the CPython extension module `turbo._turbo`: FastAPI-style apps served by
   turbo.h. The package turbo/ (Python) re-exports it and holds what runs at import and
   decoration time; everything a request touches is here.

   BUILD (from the repository root: `make`; or `pip install . --no-build-isolation`)
     cc -O3 -fPIC -shared -Wall -Wextra -Werror -I"$(python3 -c 'import sysconfig;
        print(sysconfig.get_paths()["include"])')" turbo_py.c \
        -o turbo/_turbo"$(python3-config --extension-suffix)" -lpthread

   HOW A REQUEST FLOWS
     turbo.h parses the request and matches the route in C. A native route
     (app.native) is a plain turbo_handler and runs without the GIL. Every
     Python route goes through one trampoline, tb_py_handler, whose `user`
     is the route's plan: which values come from the path, the query, a
     header, a cookie, the body, a form or turbo.Request, how each is
     converted and checked, their defaults. The plan is read once, at
     decoration, by turbo/_plans.py (describe; with dependencies, from the
     whole graph: turbo/dependencies.py's Solver, which C then calls). The
     trampoline runs holding the GIL, which turbo takes for it (its routes
     are TURBO_LOCKED; a thread state is kept per turbo thread): it converts
     the values in C, calls the function with vectorcall and writes the
     result as JSON straight from the Python objects with the turbo.h
     writer. turbo lets go of the GIL once it has served the requests read
     together, so pipelined requests take it once.

     `async def` handlers run on one asyncio loop per process, in a thread
     of its own (turbo/_support.py's Loop). The trampoline hands the
     coroutine over with asyncio.run_coroutine_threadsafe and defers the
     answer (turbo_res_defer); when the future completes, its callback calls
     turbo_defer_resume, and the answer is written on the loop's thread.
     A result that is callable (a StreamingResponse) is an ASGI app that
     answers itself, on that loop, as a mounted app does (tb_answer_asgi).
     An @app.websocket endpoint runs there too, its handshake deferred;
     turbo's WebSocket callbacks queue their events for the loop without
     the GIL ("WebSockets", below).

     A handler that blocks (time.sleep, a database call, waiting for the
     GIL) is turbo.h's business: its event loop goes on with another thread
     (see EXECUTION MODEL in turbo.h), so any number of these run at once.

   PROCESSES AND THE GIL
     app.run(workers=N) asks turbo_run to fork N processes after the routes
     are registered (turbo_config.processes); each runs `threads` event loops.
     run() releases the GIL for turbo_run; the hooks take it back around
     each fork (before_fork/after_fork: PyOS_BeforeFork, then
     PyOS_AfterFork_Parent or _Child, as os.fork does) and around each
     process's start and stop (the asyncio thread, the thread states).

   MEMORY RULE FOR NATIVE HANDLERS: as in turbo.h, the framework owns
   everything it hands you; copy what you keep beyond the call.

   The module keeps its state in static variables, so it supports one
   interpreter per process (no subinterpreters). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Not TURBO_STATIC: native handler libraries loaded by app.native resolve
   the turbo_* functions they call from this module (made global by App.native). */
#define TURBO_IMPL
#include "turbo.h"

#define TB_MAX_ARGS 32

/* ================================================================ module state */

static PyTypeObject tb_AppType, tb_RequestType, tb_ResponseType, tb_JSONResponseType, tb_WebSocketType,
    tb_PendingType, tb_ReadyType, tb_ASGICallType, tb_WSGIStartType;

/* From turbo/_support.py, imported once: */
static PyObject *tb_json_loads; /* json.loads: request bodies and Request.json() */
static PyObject *tb_JSONDecodeError;
static PyObject *tb_Headers;         /* Request.headers' class */
static PyObject *tb_QueryParams;     /* Request.query_params' */
static PyObject *tb_plain;           /* the JSON form of other objects */
static PyObject *tb_BaseModel;       /* pydantic.BaseModel, once pydantic is imported */
static PyObject *tb_ValidationError; /* pydantic.ValidationError */
static int tb_pydantic_v2;

/* The keywords of model_dump(mode="json", by_alias=True) and of pydantic 1's dict(by_alias=True). */
static PyObject *tb_kw_dump, *tb_kw_by_alias;
static PyObject *tb_s_content, *tb_s_status_code, *tb_s_headers, *tb_s_media_type, *tb_s_application_json,
    *tb_s_content_type, *tb_s_background;
static PyObject *tb_s_pairs, *tb_s_result, *tb_s_add_done_callback, *tb_s_model_dump, *tb_s_json, *tb_s_dict,
    *tb_s_done, *tb_s_set_result, *tb_s_set_exception, *tb_s_append, *tb_s_popleft, *tb_s_close,
    *tb_s_exception_handlers;

/* The keys and constant values of ASGI scopes and messages and of WSGI
   environs: a dict built from these hashes nothing and copies no text. */
static PyObject *tb_s_type, *tb_s_asgi, *tb_s_version, *tb_s_spec_version, *tb_s_http_version, *tb_s_method,
    *tb_s_scheme, *tb_s_path, *tb_s_raw_path, *tb_s_query_string, *tb_s_root_path, *tb_s_client, *tb_s_server,
    *tb_s_state, *tb_s_extensions, *tb_s_body, *tb_s_more_body, *tb_s_status, *tb_s_subprotocol, *tb_s_bytes,
    *tb_s_text, *tb_s_code, *tb_s_reason, *tb_s_http, *tb_s_https, *tb_s_asgi_3_0, *tb_s_spec_2_3,
    *tb_s_http_1_0, *tb_s_http_1_1, *tb_s_slash, *tb_s_pathsend, *tb_s_http_request, *tb_s_http_disconnect,
    *tb_s_ws_connect, *tb_s_ws_receive, *tb_s_ws_disconnect, *tb_s_empty, *tb_e_request_method,
    *tb_e_script_name, *tb_e_path_info, *tb_e_query_string, *tb_e_server_protocol, *tb_e_remote_addr,
    *tb_e_server_name, *tb_e_server_port, *tb_e_remote_port, *tb_e_version, *tb_e_url_scheme, *tb_e_input,
    *tb_e_errors, *tb_e_multithread, *tb_e_multiprocess, *tb_e_run_once, *tb_e_content_type,
    *tb_e_content_length, *tb_e_http_1_0, *tb_e_http_1_1, *tb_e_input_terminated;
static PyObject *tb_wsgi_version; /* (1, 0) */

/* The asyncio loop of this process, when the app has async handlers. */
static PyObject *tb_Loop;        /* the class */
static PyObject *tb_loop_obj;    /* this process's, while it serves (see tb_loop_start) */
static PyObject *tb_loop_submit; /* its submit(coro) */
static PyObject *tb_loop_create_future, *tb_loop_create_task, *tb_loop_call_soon_threadsafe,
    *tb_loop_call_soon;
static PyObject *tb_resolve; /* _support._resolve: a future done, unless it was cancelled */
static PyObject *tb_shield;  /* asyncio.shield */

static pthread_key_t tb_scratch_key;

/* ================================================================ the GIL on worker threads */

/* Each turbo worker thread gets one Python thread state, the first time it
   runs Python, and keeps it: a request then costs a GIL hand-off, not an
   allocation. The states are deleted when the process stops serving. */
static PyInterpreterState *tb_interp;
static __thread PyThreadState *tb_thread_ts;
static PyThreadState **tb_worker_states;
static size_t tb_nworker_states;

/* 0 with the GIL held; -1 if no thread state could be made, after answering
   res (if not NULL) with a 500. */
static int tb_gil_take(turbo_res *res) {
    PyThreadState *ts = tb_thread_ts;
    if (ts) {
        PyEval_RestoreThread(ts);
        return 0;
    }
    ts = PyThreadState_New(tb_interp);
    if (!ts) goto fail;
    PyEval_RestoreThread(ts);
    /* Once per thread: the array grows by one. */
    PyThreadState **grown = PyMem_Realloc(tb_worker_states, (tb_nworker_states + 1) * sizeof *grown);
    if (!grown) {
        PyThreadState_Clear(ts);
        PyThreadState_DeleteCurrent();
        goto fail;
    }
    tb_worker_states = grown;
    tb_worker_states[tb_nworker_states++] = ts;
    tb_thread_ts = ts;
    return 0;
fail:
    if (res) turbo_res_text(res, 500, "Internal Server Error");
    return -1;
}

static void tb_gil_drop(void) { PyEval_SaveThread(); }

/* The lock of the app's Python routes (TURBO_LOCKED): their handlers run
   with the GIL taken by turbo, once for the requests pipelined together. */
static int tb_gil_acquire(void *Py_UNUSED(hook_arg)) {
    if (tb_gil_take(NULL) == 0) return 0;
    fprintf(stderr, "turbo: out of memory for a Python thread state: a 500\n");
    return -1;
}

static void tb_gil_release(void *Py_UNUSED(hook_arg)) { tb_gil_drop(); }

/* The thread in App._run, which wants the GIL only once turbo_run returns. */
static PyThreadState *tb_run_ts;
static int tb_keep_gil_ms; /* CPython's switch interval (App.run gives it) */

/* GIL held, as a loop is about to wait: how long it may keep the GIL. While
   no other thread of the interpreter could want it, for the switch
   interval, the longest CPython itself makes a waiting thread wait: then a
   busy loop takes the GIL once, not once a request. A thread whose state
   appears meanwhile (a C library's PyGILState_Ensure) waits for the end of
   that wait and of the requests it brought: asked again before the next
   wait, this answers 0. (The list of thread states is read without
   CPython's lock of it, which the C API does not offer: a state added at
   that very moment is seen before the next wait instead.) */
static int tb_gil_keep(void *Py_UNUSED(hook_arg)) {
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(tb_interp); ts; ts = PyThreadState_Next(ts))
        if (ts != tb_thread_ts && ts != tb_run_ts) return 0;
    return tb_keep_gil_ms;
}

/* GIL held; the worker threads have stopped. */
static void tb_delete_worker_states(void) {
    for (size_t i = 0; i < tb_nworker_states; i++) {
        PyThreadState_Clear(tb_worker_states[i]);
        PyThreadState_Delete(tb_worker_states[i]);
    }
    PyMem_Free(tb_worker_states);
    tb_worker_states = NULL;
    tb_nworker_states = 0;
}

/* ================================================================ errors and logs */

/* Takes the raised exception: a new reference to the (normalized) instance. */
static PyObject *tb_take_exception(void) {
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value && tb) PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

/* Prints exc's traceback (NULL: the raised exception's, which it takes) on
   sys.stderr under a line naming the route. Unlike PyErr_Print it never
   exits on SystemExit. */
static void tb_log_exception(const char *label, PyObject *exc) {
    PyObject *raised = exc ? NULL : (exc = tb_take_exception());
    if (!exc) return;
    PySys_FormatStderr("turbo: %s: unhandled exception\n", label);
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_DisplayException(exc);
#else
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Display((PyObject *)Py_TYPE(exc), exc, tb);
    Py_XDECREF(tb);
#endif
    Py_XDECREF(raised);
}

/* Logs exc as one line (type and message), with a note after it. */
static void tb_log_line(const char *label, PyObject *exc, const char *note) {
    PyObject *text = PyObject_Str(exc);
    if (text) PySys_FormatStderr("turbo: %s: %s: %U%s\n", label, Py_TYPE(exc)->tp_name, text, note);
    else PyErr_Clear();
    Py_XDECREF(text);
}

/* Logs the raised exception as one line (type and message). */
static void tb_log_error_line(const char *label) {
    PyObject *exc = tb_take_exception();
    if (!exc) return;
    tb_log_line(label, exc, "");
    Py_DECREF(exc);
}

/* Drops r, what a call made for its effect returned; NULL: logs why. */
static void tb_done_with(PyObject *r, const char *label) {
    if (!r) tb_log_error_line(label);
    Py_XDECREF(r);
}

/* ================================================================ JSON from Python objects */

/* A per-thread output buffer for JSON bodies: encoding can fail half-way
   (an unsupported type), and then the client must get a clean 500, so the
   body is built here and sent whole. Reused: no allocation per request.
   Encoding may run Python code that encodes again (a JSONResponse made in
   a generator or a pydantic serializer): that nested encoding gets a
   buffer of its own. */
static __thread turbo_buf *tb_thread_scratch; /* the key's value, read faster */
static __thread int tb_thread_scratch_busy;

static void tb_scratch_free(void *p) {
    turbo_buf_free((turbo_buf *)p);
    free(p);
    tb_thread_scratch = NULL;
}

static turbo_buf *tb_scratch(void) {
    turbo_buf *b = tb_thread_scratch;
    if (tb_thread_scratch_busy) {
        if (!(b = (turbo_buf *)calloc(1, sizeof *b))) PyErr_NoMemory();
        return b;
    }
    if (!b) {
        b = (turbo_buf *)calloc(1, sizeof *b);
        if (!b || pthread_setspecific(tb_scratch_key, b) != 0) {
            free(b);
            PyErr_NoMemory();
            return NULL;
        }
        tb_thread_scratch = b;
    }
    b->len = 0;
    b->oom = 0;
    tb_thread_scratch_busy = 1;
    return b;
}

/* Gives a buffer of tb_scratch back; one that grew for a big body is not kept. */
static void tb_scratch_done(turbo_buf *b) {
    if (b != tb_thread_scratch) { /* a nested encoding's own */
        turbo_buf_free(b);
        free(b);
        return;
    }
    tb_thread_scratch_busy = 0;
    if (b->cap > (1u << 20)) turbo_buf_free(b); /* which leaves it empty, for next time */
}

static int tb_json_check(int rc) {
    if (rc == TURBO_JSON_OK) return 0;
    if (rc == TURBO_JSON_OOM) PyErr_NoMemory();
    else PyErr_Format(PyExc_ValueError, "cannot write JSON: %s", turbo_json_strerror(rc));
    return -1;
}

static int tb_encode(turbo_json *j, PyObject *o, int lenient);

static int tb_encode_str(turbo_json *j, PyObject *s, int as_key) {
    Py_ssize_t n;
    const char *p;
    if (PyUnicode_IS_COMPACT_ASCII(s)) { /* its characters are its UTF-8 */
        p = (const char *)PyUnicode_DATA(s);
        n = PyUnicode_GET_LENGTH(s);
    } else if (!(p = PyUnicode_AsUTF8AndSize(s, &n))) {
        return -1;
    }
    return tb_json_check(as_key ? turbo_json_keyn(j, p, (size_t)n) : turbo_json_stringn(j, p, (size_t)n));
}

/* The decimal text of an int, ignoring any __repr__ of a subclass. */
static int tb_encode_int_text(turbo_json *j, PyObject *o, int as_key) {
    PyObject *text = PyLong_Type.tp_repr(o); /* ASCII: its characters are its UTF-8 */
    if (!text) return -1;
    const char *p = (const char *)PyUnicode_DATA(text);
    size_t n = (size_t)PyUnicode_GET_LENGTH(text);
    int rc = tb_json_check(as_key ? turbo_json_keyn(j, p, n) : turbo_json_raw(j, p, n));
    Py_DECREF(text);
    return rc;
}

static int tb_encode_int(turbo_json *j, PyObject *o) {
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (!overflow) return tb_json_check(turbo_json_int(j, v));
    /* Beyond a long long: every digit, as json.dumps writes it. */
    return tb_encode_int_text(j, o, 0);
}

/* Dict keys as json.dumps converts them. */
static int tb_encode_key(turbo_json *j, PyObject *k) {
    if (PyUnicode_Check(k)) return tb_encode_str(j, k, 1);
    if (k == Py_True || k == Py_False || k == Py_None)
        return tb_json_check(turbo_json_key(j, k == Py_True ? "true" : k == Py_False ? "false" : "null"));
    if (PyLong_Check(k)) return tb_encode_int_text(j, k, 1);
    if (PyFloat_Check(k)) {
        char digits[32];
        double d = PyFloat_AS_DOUBLE(k);
        if (d != d || d - d != 0) {
            PyErr_SetString(PyExc_ValueError, "cannot write JSON: a non-finite float as a key");
            return -1;
        }
        int n = turbo_dtoa(d, digits);
        return tb_json_check(turbo_json_keyn(j, digits, (size_t)n));
    }
    PyErr_Format(PyExc_TypeError, "JSON keys must be str, int, float, bool or None, not '%.200s'",
                 Py_TYPE(k)->tp_name);
    return -1;
}

static int tb_encode_dict(turbo_json *j, PyObject *o, int lenient) {
    if (tb_json_check(turbo_json_object_begin(j))) return -1;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(o, &pos, &k, &v)) {
        /* Encoding may run Python code (a model dump), which could drop these. */
        Py_INCREF(k);
        Py_INCREF(v);
        int rc = tb_encode_key(j, k);
        if (rc == 0) rc = tb_encode(j, v, lenient);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc) return -1;
    }
    return tb_json_check(turbo_json_object_end(j));
}

/* A list or a tuple. The size is read again at each step: a list may change. */
static int tb_encode_seq(turbo_json *j, PyObject *o, int lenient) {
    if (tb_json_check(turbo_json_array_begin(j))) return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(o); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(o, i);
        Py_INCREF(item);
        int rc = tb_encode(j, item, lenient);
        Py_DECREF(item);
        if (rc) return -1;
    }
    return tb_json_check(turbo_json_array_end(j));
}

/* Finds pydantic if the program imported it. Borrowed; NULL, no error, if not. */
static PyObject *tb_pydantic_base(void) {
    if (tb_BaseModel) return tb_BaseModel;
    PyObject *mod = PyDict_GetItemString(PyImport_GetModuleDict(), "pydantic"); /* borrowed */
    if (!mod) return NULL;
    tb_BaseModel = PyObject_GetAttrString(mod, "BaseModel");
    tb_ValidationError = PyObject_GetAttrString(mod, "ValidationError");
    if (!tb_BaseModel || !tb_ValidationError) {
        PyErr_Clear();
        Py_CLEAR(tb_BaseModel);
        Py_CLEAR(tb_ValidationError);
        return NULL;
    }
    tb_pydantic_v2 = PyObject_HasAttrString(tb_BaseModel, "model_validate");
    return tb_BaseModel;
}

/* Objects that are not JSON types but have a JSON form, as FastAPI's
   encoder gives them: a pydantic model its dump, the others (enum members,
   sets, dates, UUIDs, dataclasses...) what tb_plain says. A new reference;
   NULL without an error if o has none. */
static PyObject *tb_plain_value(PyObject *o) {
    PyObject *base = tb_pydantic_base();
    int is_model = base ? PyObject_IsInstance(o, base) : 0;
    if (is_model < 0) PyErr_Clear(); /* then it is no model */
    if (is_model > 0) {
        /* By alias, as FastAPI encodes a model returned without a response_model. */
        if (!tb_pydantic_v2) {
            PyObject *args[] = {o, Py_True};
            return PyObject_VectorcallMethod(tb_s_dict, args, 1, tb_kw_by_alias);
        }
        PyObject *args[] = {o, tb_s_json, Py_True};
        return PyObject_VectorcallMethod(tb_s_model_dump, args, 1, tb_kw_dump);
    }
    PyObject *plain = PyObject_CallOneArg(tb_plain, o);
    if (plain == Py_NotImplemented) Py_CLEAR(plain);
    return plain;
}

static int tb_encode_other(turbo_json *j, PyObject *o, int lenient) {
    /* Subclasses of the JSON types (IntEnum, OrderedDict, namedtuple...). */
    if (PyLong_Check(o)) return tb_encode_int(j, o);
    if (PyUnicode_Check(o)) return tb_encode_str(j, o, 0);
    if (PyFloat_Check(o)) return tb_json_check(turbo_json_double(j, PyFloat_AS_DOUBLE(o)));
    if (PyDict_Check(o)) return tb_encode_dict(j, o, lenient);
    if (PyList_Check(o) || PyTuple_Check(o)) return tb_encode_seq(j, o, lenient);
    /* An error body shows what the client sent, whatever its bytes. */
    if (lenient && PyBytes_Check(o)) {
        PyObject *text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o), "replace");
        int rc = text ? tb_encode_str(j, text, 0) : -1;
        Py_XDECREF(text);
        return rc;
    }
    /* Only containers count toward the writer's depth: a conversion whose
       result converts again (an Enum member that is its own value) is
       bounded here, as Python bounds recursion. */
    if (Py_EnterRecursiveCall(" while encoding a result as JSON")) return -1;
    PyObject *plain = tb_plain_value(o);
    if (!plain && !PyErr_Occurred() && lenient)
        plain = PyObject_Str(o); /* e.g. an exception in a validation error's ctx */
    int rc = plain ? tb_encode(j, plain, lenient) : -1;
    Py_XDECREF(plain);
    Py_LeaveRecursiveCall();
    if (rc < 0 && !PyErr_Occurred())
        PyErr_Format(PyExc_TypeError, "cannot encode an object of type '%.200s' as JSON",
                     Py_TYPE(o)->tp_name);
    return rc;
}

/* Writes o as JSON: exact types first, the common case. 0, or -1 with an
   exception set. Nesting is bounded by the writer's TURBO_JSON_MAX_DEPTH,
   which also stops a container that contains itself. */
static int tb_encode(turbo_json *j, PyObject *o, int lenient) {
    if (PyUnicode_CheckExact(o)) return tb_encode_str(j, o, 0);
    if (PyLong_CheckExact(o)) return tb_encode_int(j, o);
    if (PyDict_CheckExact(o)) return tb_encode_dict(j, o, lenient);
    if (PyList_CheckExact(o) || PyTuple_CheckExact(o)) return tb_encode_seq(j, o, lenient);
    if (PyFloat_CheckExact(o)) return tb_json_check(turbo_json_double(j, PyFloat_AS_DOUBLE(o)));
    if (o == Py_True || o == Py_False) return tb_json_check(turbo_json_bool(j, o == Py_True));
    if (o == Py_None) return tb_json_check(turbo_json_null(j));
    return tb_encode_other(j, o, lenient);
}

/* Encodes value into the scratch buffer (lenient: an error body, which
   shows any object, see tb_encode_other). Returns the buffer, to be given
   back with tb_scratch_done, or NULL with an exception set. */
static turbo_buf *tb_to_json(PyObject *value, int lenient) {
    turbo_buf *buf = tb_scratch();
    if (!buf) return NULL;
    turbo_json j;
    turbo_json_init(&j, buf);
    int rc = tb_encode(&j, value, lenient);
    if (rc == 0) rc = tb_json_check(turbo_json_finish(&j)); /* the writer's errors, out of memory too */
    if (rc) {
        tb_scratch_done(buf);
        return NULL;
    }
    return buf;
}

/* ================================================================ JSON to Python objects */
/* Request bodies are decoded here to the objects json.loads gives: its
   grammar, NaN and Infinity as it takes them, the last of duplicate keys,
   floats rounded by PyOS_string_to_double as float() rounds them. What
   this does not take (invalid JSON, bytes that are not strict UTF-8,
   integers over 18 digits, nesting past TB_JD_DEPTH) goes to json.loads
   whole, so that errors, and their positions, are json.loads' own. */

#define TB_JD_DEPTH 200
static PyObject tb_jd_pass_mark;          /* never an object: */
#define TB_JD_PASS (&tb_jd_pass_mark)     /* "leave it to json.loads" */
static const char tb_jd_escapes[] = "\"\\/bfnrt", tb_jd_escaped[] = "\"\\/\b\f\n\r\t";

typedef struct {
    const unsigned char *p, *end;
    int depth;
} tb_jd;

static PyObject *tb_jd_value(tb_jd *d);

static TB__NOINLINE void tb_jd_spaces(tb_jd *d) {
    while (d->p < d->end && *d->p <= ' ' && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

/* Skips white space: one space (json.dumps puts one after each ',' and ':') without a call. */
static inline void tb_jd_space(tb_jd *d) {
    if (d->p < d->end && *d->p == ' ') d->p++;
    if (d->p < d->end && *d->p <= ' ') tb_jd_spaces(d);
}

/* Is c next, after any white space? Then it is taken. */
static inline int tb_jd_next(tb_jd *d, char c) {
    if (d->p < d->end && *d->p == (unsigned char)c) { /* the common case: compact JSON */
        d->p++;
        return 1;
    }
    tb_jd_space(d);
    if (d->p == d->end || *d->p != c) return 0;
    d->p++;
    return 1;
}

/* Does word come next? Then it is taken. */
static int tb_jd_word(tb_jd *d, const char *word, size_t n) {
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0) return 0;
    d->p += n;
    return 1;
}

/* The four hex digits at p (6 bytes there, a "\u" first) into *out: 0, or -1. */
static int tb_jd_hex4(const unsigned char *p, Py_UCS4 *out) {
    Py_UCS4 v = 0;
    for (int i = 2; i < 6; i++) {
        int c = Py_TOLOWER(p[i]), x = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (x < 0) return -1;
        v = v << 4 | (Py_UCS4)x;
    }
    *out = v;
    return 0;
}

/* The code point at p, inside a string, into *c: how many bytes it took, or
   0 where json.loads would not take it here (a control byte, a bad escape,
   bytes that are not strict UTF-8). */
TB__INLINE int tb_jd_char(const unsigned char *p, const unsigned char *end, Py_UCS4 *c) {
    const char *k;
    Py_UCS4 low;
    *c = *p;
    if (*c >= 0x20 && *c < 0x80 && *c != '\\') return 1;
    if (*c < 0x20) return 0;
    if (*c >= 0x80) {
        int len = tb__json_utf8(p, (size_t)(end - p));
        if (len < 0) return 0;
        *c &= len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07;
        for (int i = 1; i < len; i++) *c = *c << 6 | (p[i] & 0x3F);
        return len;
    }
    if (end - p >= 2 && p[1] && (k = strchr(tb_jd_escapes, p[1])) != NULL) {
        *c = (Py_UCS4)tb_jd_escaped[k - tb_jd_escapes];
        return 2;
    }
    if (end - p < 6 || p[1] != 'u' || tb_jd_hex4(p, c) != 0) return 0;
    /* a high surrogate and a low one make one code point; alone, each stays */
    if (*c >= 0xD800 && *c <= 0xDBFF && end - p >= 12 && p[6] == '\\' && p[7] == 'u' &&
        tb_jd_hex4(p + 6, &low) == 0 && low >= 0xDC00 && low <= 0xDFFF) {
        *c = 0x10000 + ((*c - 0xD800) << 10) + (low - 0xDC00);
        return 12;
    }
    return 6;
}

/* Object keys repeat, in a body and from one body to the next: the last
   key made for each of 1,024 slots (by a hash of its bytes) is used again,
   its hash with it. Short ASCII keys only; the GIL guards the table. */
static PyObject *tb_jd_keys[1024];

static PyObject *tb_jd_key(const unsigned char *s, size_t n) {
    /* The length and three bytes: a collision only costs a key made again. */
    unsigned h = n ? ((unsigned)n * 40503u) ^ s[0] ^ (unsigned)s[n / 2] << 3 ^ (unsigned)s[n - 1] << 6 : 0;
    PyObject **slot = &tb_jd_keys[h & 1023], *key = *slot;
    if (key && (size_t)PyUnicode_GET_LENGTH(key) == n &&
        tb__equal((const char *)PyUnicode_DATA(key), (const char *)s, n))
        return Py_NewRef(key);
    if ((key = PyUnicode_New((Py_ssize_t)n, 127)) == NULL) return NULL;
    memcpy(PyUnicode_DATA(key), s, n);
    Py_XSETREF(*slot, Py_NewRef(key));
    return key;
}

/* The string of tb_jd_string that is not plain ASCII, or is near the end
   (the bytes from s to p are plain ASCII). Its code points are counted, and
   the largest found, then written into a str of that kind; runs of plain
   ASCII are skipped 16 bytes at a time (tb__json_plain_end), and copied as
   they are into a 1-byte str. Not inlined, so that tb_jd_string needs a
   smaller frame. */
static TB__NOINLINE PyObject *tb_jd_string_rest(tb_jd *d, const unsigned char *s, const unsigned char *p) {
    Py_ssize_t extra = 0; /* the bytes past the first of each code point */
    Py_ssize_t i = 0;
    Py_UCS4 c, max = 127;
    int len;
    while ((p = tb__json_plain_end(p, d->end)) < d->end && *p != '"') {
        if (!(len = tb_jd_char(p, d->end, &c))) return TB_JD_PASS;
        max = c > max ? c : max;
        extra += len - 1;
        p += len;
    }
    if (p == d->end) return TB_JD_PASS;
    d->p = p + 1;
    PyObject *str = PyUnicode_New(p - s - extra, max);
    if (!str) return NULL;
    int kind = PyUnicode_KIND(str);
    void *data = PyUnicode_DATA(str);
    while (s < p) {
        const unsigned char *run = kind == PyUnicode_1BYTE_KIND ? tb__json_plain_end(s, p) : s;
        memcpy((Py_UCS1 *)data + i, s, (size_t)(run - s));
        i += run - s;
        if ((s = run) == p) break;
        s += tb_jd_char(s, p, &c);
        PyUnicode_WRITE(kind, data, i++, c);
    }
    return str;
}

/* A string, d->p after its opening quote: plain ASCII (the common case)
   from its bytes at once, the others by tb_jd_string_rest. */
static PyObject *tb_jd_string(tb_jd *d, int is_key) {
    const unsigned char *s = d->p, *p = s;
    PyObject *str;
    for (uint64_t w, hits; d->end - p >= 8; p += 8) { /* 8 bytes at a time to the first not plain ASCII */
        memcpy(&w, p, 8);
        if ((hits = tb__json_special8(w))) {
            p += TB__FIRST_FLAGGED(hits);
            break;
        }
    }
    if (p == d->end || *p != '"') return tb_jd_string_rest(d, s, p);
    size_t n = (size_t)(p - s);
    d->p = p + 1;
    if (is_key && n <= 32) return tb_jd_key(s, n);
    if (n == 1) return PyUnicode_FromOrdinal(*s); /* CPython's own, shared: no allocation */
    if ((str = PyUnicode_New((Py_ssize_t)n, 127)) != NULL) memcpy(PyUnicode_DATA(str), s, n);
    return str;
}

/* A number: an int of up to 18 digits as it is read; a float of up to 15
   digits times a power of ten up to 22 by one exact multiplication or
   division (both factors are exact doubles, so IEEE rounds the result as
   float() does); any other float as float() reads it. */
static PyObject *tb_jd_number(tb_jd *d) {
    static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const unsigned char *s = d->p, *p = s + (*s == '-'), *digits;
    uint64_t m = 0; /* the digits; wrapped past 19 of them, and then not used */
    long ndigits = 0, frac = 0, exp = 0;
    char text[64];
    if (p < d->end && *p == '0') p++; /* then no other digit: json.loads refuses 01 */
    else
        for (; p < d->end && *p >= '0' && *p <= '9'; p++, ndigits++) m = m * 10 + (uint64_t)(*p - '0');
    if (p == s + (*s == '-')) return TB_JD_PASS;
    if (!(p < d->end && (*p == '.' || *p == 'e' || *p == 'E'))) {
        d->p = p;
        return ndigits > 18 ? TB_JD_PASS : PyLong_FromLongLong(*s == '-' ? -(long long)m : (long long)m);
    }
    if (*p == '.') {
        for (digits = ++p; p < d->end && *p >= '0' && *p <= '9'; p++, ndigits++, frac++)
            m = m * 10 + (uint64_t)(*p - '0');
        if (p == digits) return TB_JD_PASS;
    }
    if (p < d->end && (*p == 'e' || *p == 'E')) {
        int negative = ++p < d->end && *p == '-';
        if (p < d->end && (*p == '+' || *p == '-')) p++;
        for (digits = p; p < d->end && *p >= '0' && *p <= '9'; p++)
            if (exp < 100000) exp = exp * 10 + (*p - '0');
        if (p == digits) return TB_JD_PASS;
        exp = negative ? -exp : exp;
    }
    d->p = p;
    exp -= frac;
    if (ndigits <= 15 && exp >= -22 && exp <= 22) {
        double x = exp < 0 ? (double)m / pow10[-exp] : (double)m * pow10[exp];
        return PyFloat_FromDouble(*s == '-' ? -x : x);
    }
    if (p - s >= (long)sizeof text) return TB_JD_PASS;
    memcpy(text, s, (size_t)(p - s));
    text[p - s] = 0;
    double x = PyOS_string_to_double(text, NULL, NULL);
    return x == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(x);
}

/* An array or an object, d->p after its bracket. */
static PyObject *tb_jd_container(tb_jd *d, int is_list) {
    PyObject *c = is_list ? PyList_New(0) : PyDict_New(), *key = NULL, *v = TB_JD_PASS;
    char close = is_list ? ']' : '}';
    if (!c) return NULL;
    if (++d->depth > TB_JD_DEPTH) goto out;
    if (tb_jd_next(d, close)) goto closed;
    do {
        if (!is_list) { /* a key and its colon */
            if (!tb_jd_next(d, '"')) goto out;
            if ((key = tb_jd_string(d, 1)) == TB_JD_PASS || !key) {
                v = key;
                key = NULL;
                goto out;
            }
            if (!tb_jd_next(d, ':')) goto out;
        }
        if ((v = tb_jd_value(d)) == TB_JD_PASS || !v) goto out;
        int rc = is_list ? PyList_Append(c, v) : PyDict_SetItem(c, key, v);
        Py_DECREF(v);
        Py_CLEAR(key);
        v = rc ? NULL : TB_JD_PASS;
        if (rc) goto out;
    } while (tb_jd_next(d, ','));
    if (!tb_jd_next(d, close)) goto out;
closed:
    d->depth--;
    return c;
out: /* v: TB_JD_PASS, or NULL with an exception set */
    Py_XDECREF(key);
    Py_DECREF(c);
    return v;
}

/* A value, after any white space. */
static PyObject *tb_jd_value(tb_jd *d) {
    tb_jd_space(d);
    if (d->p == d->end) return TB_JD_PASS;
    switch (*d->p) {
    case '{': d->p++; return tb_jd_container(d, 0);
    case '[': d->p++; return tb_jd_container(d, 1);
    case '"': d->p++; return tb_jd_string(d, 0);
    case 't': return tb_jd_word(d, "true", 4) ? Py_NewRef(Py_True) : TB_JD_PASS;
    case 'f': return tb_jd_word(d, "false", 5) ? Py_NewRef(Py_False) : TB_JD_PASS;
    case 'n': return tb_jd_word(d, "null", 4) ? Py_NewRef(Py_None) : TB_JD_PASS;
    case 'N': return tb_jd_word(d, "NaN", 3) ? PyFloat_FromDouble(Py_NAN) : TB_JD_PASS;
    case 'I': return tb_jd_word(d, "Infinity", 8) ? PyFloat_FromDouble(Py_HUGE_VAL) : TB_JD_PASS;
    case '-': return tb_jd_word(d, "-Infinity", 9) ? PyFloat_FromDouble(-Py_HUGE_VAL) : tb_jd_number(d);
    default: return *d->p >= '0' && *d->p <= '9' ? tb_jd_number(d) : TB_JD_PASS;
    }
}

/* json.loads(body), by tb_jd_value when it can. */
static PyObject *tb_loads(const char *body, size_t len) {
    tb_jd d = {(const unsigned char *)body, (const unsigned char *)body + len, 0};
    PyObject *v = tb_jd_value(&d), *bytes;
    if (v && v != TB_JD_PASS) {
        tb_jd_space(&d);
        if (d.p == d.end) return v;
        Py_DECREF(v); /* more after the value: json.loads says where */
    }
    if (!v || !(bytes = PyBytes_FromStringAndSize(body, (Py_ssize_t)len))) return NULL;
    Py_SETREF(bytes, PyObject_CallOneArg(tb_json_loads, bytes));
    return bytes;
}

/* turbo._turbo.json_loads(b): for tests and benchmarks. */
static PyObject *tb_json_loads_py(PyObject *Py_UNUSED(module), PyObject *body) {
    if (!PyBytes_Check(body)) return PyObject_CallOneArg(tb_json_loads, body);
    return tb_loads(PyBytes_AS_STRING(body), (size_t)PyBytes_GET_SIZE(body));
}

/* ================================================================ small helpers */

/* Appends v, a new reference (NULL after an error), and lets it go: 0 or -1. */
static int tb_append(PyObject *list, PyObject *v) {
    int rc = v ? PyList_Append(list, v) : -1;
    Py_XDECREF(v);
    return rc;
}

/* (a, b), taking both: a new reference, or NULL with an exception. */
static PyObject *tb_pair(PyObject *a, PyObject *b) {
    PyObject *t = a && b ? PyTuple_New(2) : NULL;
    if (!t) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, a);
    PyTuple_SET_ITEM(t, 1, b);
    return t;
}

/* d[key] = v, taking v: 0, or -1 with an exception (v NULL: its own). */
static int tb_put(PyObject *d, PyObject *key, PyObject *v) {
    int rc = v ? PyDict_SetItem(d, key, v) : -1;
    Py_XDECREF(v);
    return rc;
}

/* 1, or 0 with a ValueError: the one rule for statuses is turbo.h's. */
static int tb_check_status(long status) {
    if (status >= 0 && status <= INT_MAX && turbo_status_allowed((int)status)) return 1;
    PyErr_Format(PyExc_ValueError, "status_code %ld cannot be sent: turbo answers with 200 to 599", status);
    return 0;
}

static void tb_send_500(turbo_res *res) {
    static const char body[] = "{\"detail\":\"Internal Server Error\"}";
    turbo_res_send(res, 500, "application/json", body, sizeof body - 1);
}

/* Sends value as a JSON body, written straight into the response. 0, or
   -1 with an exception set (nothing sent: what was written is dropped). */
static int tb_send_json(turbo_res *res, int status, PyObject *value, int lenient) {
    if (!turbo_status_has_body(status)) { /* sent empty, but FastAPI still names the type */
        turbo_res_send(res, status, "application/json", "", 0);
        return 0;
    }
    turbo_json *j = turbo_res_json(res, status);
    int rc = tb_encode(j, value, lenient);
    if (rc == 0) rc = tb_json_check(turbo_json_finish(j)); /* the writer's errors, out of memory too */
    if (rc) tb__res_restart(res);
    return rc;
}

static void tb_trim(const char **s, size_t *n) {
    while (*n && Py_ISSPACE((*s)[0])) (*s)++, (*n)--;
    while (*n && Py_ISSPACE((*s)[*n - 1])) (*n)--;
}

/* Copies s without the underscores that pydantic allows between two
   letters or digits; NULL (no error) if one is misplaced. PyMem_Free it. */
static char *tb_copy_without_underscores(const char *s, size_t n) {
    char *out = (char *)PyMem_Malloc(n + 1);
    if (!out) return (char *)PyErr_NoMemory();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_') {
            if (i == 0 || i + 1 == n || !Py_ISALNUM(s[i - 1]) || !Py_ISALNUM(s[i + 1])) {
                PyMem_Free(out);
                return NULL;
            }
            continue;
        }
        out[k++] = s[i];
    }
    out[k] = '\0';
    return out;
}

enum { TB_PLUS_IS_SPACE = 1, TB_LATIN1 = 2 };

/* As urllib.parse.unquote (unquote_plus with plus_is_space): %XX decoded,
   a "%" that begins no escape kept as it is (a form body's "50%off"; the
   parser refuses such a target). The length written into dst. */
static size_t tb_unquote(char *dst, const char *s, size_t n, int plus_is_space) {
    size_t i, k = 0;
    for (i = 0; i < n; i++) {
        int hi = s[i] == '%' && i + 2 < n ? tb__hex((unsigned char)s[i + 1]) : -1;
        int lo = hi >= 0 ? tb__hex((unsigned char)s[i + 2]) : -1;
        if (lo >= 0) {
            dst[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            dst[k++] = s[i] == '+' && plus_is_space ? ' ' : s[i];
        }
    }
    return k;
}

/* Percent-decodes (tb_unquote) and decodes UTF-8 with replacement
   characters, as Starlette reads paths, queries and form bodies; or
   Latin-1, as PEP 3333 wants PATH_INFO. */
static PyObject *tb_decoded_str(const char *s, size_t n, int how) {
    int plus_is_space = how & TB_PLUS_IS_SPACE;
    char small[256], *buf = small;
    const char *text = s;
    size_t len = n;
    if (n && (memchr(s, '%', n) || (plus_is_space && memchr(s, '+', n)))) {
        if (n > sizeof small && !(buf = (char *)PyMem_Malloc(n))) return PyErr_NoMemory();
        len = tb_unquote(buf, s, n, plus_is_space);
        text = buf;
    }
    PyObject *r = how & TB_LATIN1 ? PyUnicode_DecodeLatin1(text, (Py_ssize_t)len, NULL)
                                  : PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, "replace");
    if (buf != small) PyMem_Free(buf);
    return r;
}

static PyObject *tb_str_view(turbo_str s) {
    return PyUnicode_DecodeUTF8(s.len ? s.ptr : "", (Py_ssize_t)s.len, "replace");
}

/* ================================================================ proxies */

/* The proxies in front that are trusted to say how a client came (their
   X-Forwarded-* headers): uvicorn's forwarded_allow_ips, addresses and
   networks ("10.0.0.0/8", "fd00::/8") separated by commas, or "*" for any.
   Set by App._run before the threads start (tb_set_proxies); read only
   after. */
typedef struct {
    unsigned char addr[16];
    int family, bits; /* AF_INET or AF_INET6, and the prefix's length */
} tb_net;
#define TB_MAX_PROXIES 64
static tb_net tb_proxies[TB_MAX_PROXIES];
static int tb_nproxies, tb_any_proxy;

/* The address written in the n bytes at text, an IPv4 one mapped into
   IPv6 ("::ffff:10.0.0.1", a dual-stack socket's peer) as IPv4: 0, or -1. */
static int tb_address(const char *text, size_t n, tb_net *out) {
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char buf[INET6_ADDRSTRLEN];
    if (n >= sizeof buf) return -1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
    } else if (inet_pton(AF_INET6, buf, out->addr) != 1) {
        return -1;
    } else if (memcmp(out->addr, mapped, sizeof mapped) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        out->family = AF_INET;
    } else {
        out->family = AF_INET6;
    }
    out->bits = out->family == AF_INET ? 32 : 128;
    return 0;
}

/* A network written in the n bytes at text, "10.0.0.0/8", or an address
   alone (all its bits): 0, or -1. */
static int tb_network(const char *text, size_t n, tb_net *net) {
    const char *slash = memchr(text, '/', n), *d, *end = text + n;
    int bits = 0;
    if (tb_address(text, slash ? (size_t)(slash - text) : n, net) < 0) return -1;
    if (!slash) return 0;
    if (end - slash < 2 || end - slash > 4) return -1; /* 1 to 3 digits */
    for (d = slash + 1; d < end; d++) {
        if (*d < '0' || *d > '9') return -1;
        bits = bits * 10 + (*d - '0');
    }
    if (bits > net->bits) return -1;
    net->bits = bits;
    return 0;
}

static int tb_in_net(const tb_net *a, const tb_net *net) {
    int whole = net->bits / 8, rest = net->bits % 8;
    if (a->family != net->family || memcmp(a->addr, net->addr, (size_t)whole) != 0) return 0;
    /* (0xff00 >> rest) & 0xff: a byte's top rest bits, the last of the prefix */
    return rest == 0 || ((a->addr[whole] ^ net->addr[whole]) & (0xff00 >> rest) & 0xff) == 0;
}

/* Is the address written in the n bytes at text a trusted proxy's? */
static int tb_trusted(const char *text, size_t n) {
    tb_net a;
    if (tb_any_proxy) return 1;
    if (tb_address(text, n, &a) < 0) return 0;
    for (int i = 0; i < tb_nproxies; i++)
        if (tb_in_net(&a, &tb_proxies[i])) return 1;
    return 0;
}

#define TB_PROXY_SEPARATORS ", \t"

/* Reads forwarded_allow_ips into tb_proxies: 0, or -1 with a ValueError
   naming the entry that is no address, network or "*". */
static int tb_set_proxies(const char *list) {
    tb_nproxies = tb_any_proxy = 0;
    for (const char *p = list + strspn(list, TB_PROXY_SEPARATORS); *p; p += strspn(p, TB_PROXY_SEPARATORS)) {
        size_t len = strcspn(p, TB_PROXY_SEPARATORS);
        char entry[64];
        if (len == 1 && *p == '*') {
            tb_any_proxy = 1;
        } else if (tb_nproxies == TB_MAX_PROXIES) {
            PyErr_Format(PyExc_ValueError, "forwarded_allow_ips: more than %d entries", TB_MAX_PROXIES);
            return -1;
        } else if (tb_network(p, len, &tb_proxies[tb_nproxies]) == 0) {
            tb_nproxies++;
        } else {
            snprintf(entry, sizeof entry, "%.*s", (int)len, p); /* PyErr_Format has no %.*s before 3.12 */
            PyErr_Format(PyExc_ValueError,
                         "forwarded_allow_ips: %s is no address, network (10.0.0.0/8, fd00::/8) or *", entry);
            return -1;
        }
        p += len;
    }
    return 0;
}

/* The last lines of X-Forwarded-Proto and X-Forwarded-For, in one pass: a
   proxy appends its own after any the client sent (uvicorn reads the last
   too). */
static void tb_forwarded(turbo_req *req, turbo_str *proto, turbo_str *by) {
    for (int i = 0, count = turbo_req_header_count(req); i < count; i++) {
        turbo_str key = turbo_req_header_name(req, i);
        if (key.len < 15 || strncasecmp(key.ptr, "x-forwarded-", 12) != 0) continue;
        if (key.len == 17 && strncasecmp(key.ptr + 12, "proto", 5) == 0)
            *proto = turbo_req_header_value(req, i);
        else if (key.len == 15 && strncasecmp(key.ptr + 12, "for", 3) == 0)
            *by = turbo_req_header_value(req, i);
    }
}

/* The peer of req into host (turbo_req_peer's port, or -1), *https 0. From
   a trusted proxy, *https says whether X-Forwarded-Proto is "https", and,
   with client, host is the client X-Forwarded-For names, port 0, as uvicorn
   reads it: the nearest address from the right that is no trusted proxy's
   (each proxy appends its peer), else the first (any proxy trusted: the
   first). */
static int tb_peer(turbo_req *req, char *host, size_t cap, int *https, int client) {
    int port = turbo_req_peer(req, host, cap);
    *https = 0;
    if (port < 0 || !tb_trusted(host, strlen(host))) return port;
    turbo_str proto = {NULL, 0}, by = {NULL, 0};
    tb_forwarded(req, &proto, &by);
    *https = proto.len == 5 && strncasecmp(proto.ptr, "https", 5) == 0;
    if (!client || !by.ptr) return port;
    const char *item, *end, *rest = by.ptr + by.len; /* the items before rest are left */
    for (;;) {
        for (item = rest; item > by.ptr && item[-1] != ',';) item--;
        const char *begins = item;
        for (end = rest; item < end && (*item == ' ' || *item == '\t');) item++;
        while (end > item && (end[-1] == ' ' || end[-1] == '\t')) end--;
        if ((!tb_any_proxy && !tb_trusted(item, (size_t)(end - item))) || begins == by.ptr) break;
        rest = begins - 1; /* before its comma */
    }
    if (item == end || (size_t)(end - item) >= cap) return port;
    memcpy(host, item, (size_t)(end - item));
    host[end - item] = '\0';
    return 0;
}

/* ================================================================ turbo.Request */

/* Raw access to the request, made only for handlers that declare it. The
   fields are read from the turbo_req when first asked for; if the handler
   keeps the object beyond its call (or is async), everything is copied
   before the turbo_req goes away. The derived fields (Starlette's url,
   cookies, scope, state) are made from those by turbo/_support.py. */
enum {
    TB_RQ_METHOD,
    TB_RQ_PATH,
    TB_RQ_HEADERS,
    TB_RQ_QUERY,
    TB_RQ_PATH_PARAMS,
    TB_RQ_BODY,
    TB_RQ_QUERY_STRING,
    TB_RQ_RAW_PATH,
    TB_RQ_CLIENT,
    TB_RQ_SCHEME,
    TB_RQ_N
};
enum { TB_RQ_URL = TB_RQ_N, TB_RQ_COOKIES, TB_RQ_SCOPE, TB_RQ_STATE, TB_RQ_ALL };
static PyObject *tb_request_derive[TB_RQ_ALL]; /* by field: _support.request_url, ... */
static PyObject *tb_Body, *tb_Address;         /* request.body's class, request.client's */
static PyObject *tb_MutableHeaders;            /* Response.headers' view */

/* Whether the connection of an async handler's request has gone: set by
   turbo (tb_request_ended) on a worker thread, read by is_disconnected();
   freed by the last of the two to let go of it. */
typedef struct {
    int refs, gone;
} tb_watch;

typedef struct {
    PyObject_HEAD
    turbo_req *req; /* NULL once detached */
    turbo_req *own; /* req when it is a copy this object frees (turbo_req_copy) */
    tb_watch *watch;
    PyObject *field[TB_RQ_ALL];
} tb_Request;

/* A Headers: each name's first value (as Starlette's headers[name]), and
   every pair in order as its _pairs (for getlist() and raw). */
static PyObject *tb_req_headers(turbo_req *req) {
    int n = turbo_req_header_count(req);
    PyObject *d = PyObject_CallNoArgs(tb_Headers), *pairs = PyList_New(n);
    for (int i = 0; d && pairs && i < n; i++) {
        turbo_str name = turbo_req_header_name(req, i), value = turbo_req_header_value(req, i);
        PyObject *key = PyUnicode_DecodeLatin1(name.ptr, (Py_ssize_t)name.len, NULL);
        PyObject *lower = key ? PyObject_CallMethod(key, "lower", NULL) : NULL;
        PyObject *v = lower ? PyUnicode_DecodeLatin1(value.ptr, (Py_ssize_t)value.len, NULL) : NULL;
        PyObject *pair = v ? PyTuple_Pack(2, lower, v) : NULL;
        if (!pair || !PyDict_SetDefault(d, lower, v)) Py_CLEAR(d);
        if (pair) PyList_SET_ITEM(pairs, i, pair);
        Py_XDECREF(key);
        Py_XDECREF(lower);
        Py_XDECREF(v);
    }
    if (d && (!pairs || PyObject_SetAttr(d, tb_s_pairs, pairs) < 0)) Py_CLEAR(d);
    Py_XDECREF(pairs);
    return d;
}

/* The query's pairs, as turbo.h splits them, decoded, as a QueryParams: a
   dict of each name's last value that keeps every pair. */
static PyObject *tb_req_query_params(turbo_req *req) {
    turbo_str rest = turbo_req_query(req), name, value;
    PyObject *pairs = PyList_New(0), *params;
    while (pairs && turbo_query_next(&rest, &name, &value)) {
        PyObject *k = tb_decoded_str(name.ptr, name.len, TB_PLUS_IS_SPACE);
        PyObject *v = k ? tb_decoded_str(value.ptr, value.len, TB_PLUS_IS_SPACE) : NULL;
        if (!v || tb_append(pairs, PyTuple_Pack(2, k, v)) < 0) Py_CLEAR(pairs);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    params = pairs ? PyObject_CallOneArg(tb_QueryParams, pairs) : NULL;
    Py_XDECREF(pairs);
    return params;
}

static PyObject *tb_req_path_params(turbo_req *req) {
    PyObject *d = PyDict_New();
    int n = turbo_req_param_count(req);
    for (int i = 0; d && i < n; i++) {
        turbo_str name = turbo_req_param_name(req, i), value = turbo_req_param_value(req, i);
        PyObject *k = tb_str_view(name);
        PyObject *v = k ? tb_decoded_str(value.ptr, value.len, 0) : NULL;
        if (!v || PyDict_SetItem(d, k, v) < 0) Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    return d;
}

static PyObject *tb_request_build(turbo_req *req, int field) {
    char host[64];
    int https;
    if (field == TB_RQ_METHOD) return tb_str_view(turbo_req_method(req));
    if (field == TB_RQ_HEADERS) return tb_req_headers(req);
    if (field == TB_RQ_QUERY) return tb_req_query_params(req);
    if (field == TB_RQ_PATH_PARAMS) return tb_req_path_params(req);
    if (field == TB_RQ_CLIENT || field == TB_RQ_SCHEME) {
        int port = tb_peer(req, host, sizeof host, &https, 1);
        if (field == TB_RQ_SCHEME) return Py_NewRef(https ? tb_s_https : tb_s_http);
        if (port < 0) Py_RETURN_NONE;
        return PyObject_CallFunction(tb_Address, "si", host, port);
    }
    turbo_str s = field == TB_RQ_BODY           ? turbo_req_body(req)
                  : field == TB_RQ_QUERY_STRING ? turbo_req_query(req)
                                                : turbo_req_path(req);
    if (field == TB_RQ_PATH) return tb_decoded_str(s.ptr, s.len, 0);
    if (field == TB_RQ_BODY)
        return PyObject_CallFunction(tb_Body, "y#", s.len ? s.ptr : "", (Py_ssize_t)s.len);
    return PyBytes_FromStringAndSize(s.len ? s.ptr : "", (Py_ssize_t)s.len);
}

/* Borrowed reference to a field, built on first use. */
static PyObject *tb_request_field(tb_Request *r, int field) {
    PyObject **slot = &r->field[field];
    if (!*slot && field >= TB_RQ_N) *slot = PyObject_CallOneArg(tb_request_derive[field], (PyObject *)r);
    else if (!*slot && r->req) *slot = tb_request_build(r->req, field);
    else if (!*slot) PyErr_SetString(PyExc_RuntimeError, "the request is no longer available");
    return *slot;
}

static PyObject *tb_request_get(PyObject *self, void *field) {
    return Py_XNewRef(tb_request_field((tb_Request *)self, (int)(intptr_t)field));
}

/* Called when the turbo_req is about to go away: a Request still referenced
   elsewhere copies everything first. */
static void tb_request_detach(tb_Request *r, const char *label) {
    if (r->own) return; /* a copy: it lasts as long as r */
    if (Py_REFCNT(r) > 1) {
        for (int f = 0; f < TB_RQ_N; f++) {
            if (!tb_request_field(r, f)) {
                tb_log_error_line(label);
                r->field[f] = Py_NewRef(Py_None);
            }
        }
    }
    r->req = NULL;
}

static PyObject *tb_request_new(turbo_req *req) {
    tb_Request *r = (tb_Request *)tb_RequestType.tp_alloc(&tb_RequestType, 0); /* zeroed */
    if (r) r->req = req;
    return (PyObject *)r;
}

/* A Request over a copy of req: for an async handler's exception handler,
   which runs once req is gone. The copy is of req's bytes in one block, far
   cheaper than the Python objects of every field. */
static PyObject *tb_request_copy(turbo_req *req) {
    turbo_req *copy = turbo_req_copy(req);
    if (!copy) return PyErr_NoMemory();
    tb_Request *r = (tb_Request *)tb_request_new(copy);
    if (!r) {
        turbo_req_free(copy);
        return NULL;
    }
    r->own = copy;
    return (PyObject *)r;
}

static void tb_watch_drop(tb_watch *watch) {
    if (watch && __atomic_sub_fetch(&watch->refs, 1, __ATOMIC_ACQ_REL) == 0) free(watch);
}

/* turbo_defer_watch's callback, on a worker thread. */
static void tb_request_ended(void *arg, int gone) {
    tb_watch *watch = (tb_watch *)arg;
    if (gone) __atomic_store_n(&watch->gone, 1, __ATOMIC_RELEASE);
    tb_watch_drop(watch);
}

/* Lets r tell whether the client of the answer deferred as d has gone. */
static void tb_request_watch(tb_Request *r, turbo_defer *d) {
    if (r->watch || !(r->watch = (tb_watch *)calloc(1, sizeof *r->watch))) return; /* else always False */
    r->watch->refs = 2;
    turbo_defer_watch(d, tb_request_ended, r->watch);
}

static void tb_request_dealloc(PyObject *self) {
    tb_Request *r = (tb_Request *)self;
    for (int f = 0; f < TB_RQ_ALL; f++) Py_XDECREF(r->field[f]);
    turbo_req_free(r->own);
    tb_watch_drop(r->watch);
    PyObject_Free(self);
}

static PyObject *tb_ready_new(PyObject *value);

/* An awaitable, as Starlette's: await request.json(). */
static PyObject *tb_request_json(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    PyObject *body = tb_request_field((tb_Request *)self, TB_RQ_BODY);
    return body ? tb_ready_new(tb_json_loads_py(NULL, body)) : NULL;
}

static PyObject *tb_request_repr(PyObject *self) {
    PyObject *m = tb_request_field((tb_Request *)self, TB_RQ_METHOD);
    PyObject *p = m ? tb_request_field((tb_Request *)self, TB_RQ_PATH) : NULL;
    return p ? PyUnicode_FromFormat("<turbo.Request %U %U>", m, p) : NULL;
}

static PyGetSetDef tb_request_getset[] = {
    {"method", tb_request_get, NULL, "The method, e.g. 'GET'.", (void *)TB_RQ_METHOD},
    {"path", tb_request_get, NULL, "The path, percent-decoded, without the query.", (void *)TB_RQ_PATH},
    {"headers", tb_request_get, NULL,
     "A dict of headers, names in lower case, read in any case (first of repeats).", (void *)TB_RQ_HEADERS},
    {"query_params", tb_request_get, NULL, "A dict of decoded query parameters (last of repeats).",
     (void *)TB_RQ_QUERY},
    {"path_params", tb_request_get, NULL, "A dict of decoded path captures.", (void *)TB_RQ_PATH_PARAMS},
    {"body", tb_request_get, NULL, "The body as bytes; await request.body() works too.", (void *)TB_RQ_BODY},
    {"query_string", tb_request_get, NULL, "The raw query (bytes).", (void *)TB_RQ_QUERY_STRING},
    {"raw_path", tb_request_get, NULL, "The raw path (bytes).", (void *)TB_RQ_RAW_PATH},
    {"client", tb_request_get, NULL, "(host, port) of the client (as a trusted proxy says).",
     (void *)TB_RQ_CLIENT},
    {"scheme", tb_request_get, NULL, "'http', or 'https' as a trusted proxy says.", (void *)TB_RQ_SCHEME},
    {"url", tb_request_get, NULL, "The URL, as Starlette's.", (void *)TB_RQ_URL},
    {"cookies", tb_request_get, NULL, "A dict of cookies.", (void *)TB_RQ_COOKIES},
    {"scope", tb_request_get, NULL, "An ASGI-style scope.", (void *)TB_RQ_SCOPE},
    {"state", tb_request_get, NULL, "Attributes for this request.", (void *)TB_RQ_STATE},
    {NULL, NULL, NULL, NULL, NULL}};

/* await request.is_disconnected(), as Starlette's: has the client gone?
   Known for an async handler's request while its answer is awaited;
   False for a sync handler's, which holds its connection's turn. */
static PyObject *tb_request_is_disconnected(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    tb_watch *watch = ((tb_Request *)self)->watch;
    return tb_ready_new(PyBool_FromLong(watch && __atomic_load_n(&watch->gone, __ATOMIC_ACQUIRE)));
}

static PyMethodDef tb_request_methods[] = {
    {"json", tb_request_json, METH_NOARGS, "await request.json(): the body parsed (json.loads)."},
    {"is_disconnected", tb_request_is_disconnected, METH_NOARGS,
     "await request.is_disconnected(): has the client gone (while an async handler runs)?"},
    {NULL, NULL, 0, NULL}};

/* ================================================================ turbo.Response */

typedef struct {
    PyObject_HEAD
    PyObject *body;       /* bytes, or an ASCII str until .body is read */
    PyObject *headers;    /* list of (name, value) str tuples; NULL: none yet */
    PyObject *media_type; /* str or None */
    PyObject *background; /* BackgroundTasks to run once it is sent, or NULL */
    PyObject *file;       /* FileResponse's path (bytes): turbo sends that file, or NULL */
    PyObject *dict;       /* attributes set on it (an http middleware's body_iterator), or NULL */
    int status_code;
} tb_Response;

/* Checks one header as turbo_res_header will (turbo_header_check), so that
   a bad one is an exception where the Response is made, not a surprise at
   sending time. */
static int tb_check_header(PyObject *name, PyObject *value) {
    Py_ssize_t nn, vn;
    const char *n = PyUnicode_Check(name) ? PyUnicode_AsUTF8AndSize(name, &nn) : NULL;
    const char *v = n && PyUnicode_Check(value) ? PyUnicode_AsUTF8AndSize(value, &vn) : NULL;
    if (!v) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "header names and values must be str");
        return -1;
    }
    int rc = turbo_header_check(n, (size_t)nn, v, (size_t)vn);
    if (rc == TURBO_HEADER_BAD_NAME)
        PyErr_Format(PyExc_ValueError, "header name %R is not a valid token", name);
    else if (rc == TURBO_HEADER_BAD_VALUE)
        PyErr_Format(PyExc_ValueError, "header %R has a control character in its value %R", name, value);
    else if (rc != 0) PyErr_Format(PyExc_ValueError, "header %R is set by turbo itself", name);
    return rc == 0 ? 0 : -1;
}

/* headers: a mapping or an iterable of pairs -> a checked list of pairs. */
static PyObject *tb_header_list(PyObject *headers) {
    PyObject *items = PyMapping_Check(headers) && !PyList_Check(headers) && !PyTuple_Check(headers)
                          ? PyMapping_Items(headers)
                          : PySequence_List(headers);
    for (Py_ssize_t i = 0; items && i < PyList_GET_SIZE(items); i++) {
        PyObject *pair = PySequence_Tuple(PyList_GET_ITEM(items, i));
        if (pair && PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_ValueError, "headers must be (name, value) pairs");
            Py_CLEAR(pair);
        }
        if (pair && tb_check_header(PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0) Py_CLEAR(pair);
        if (!pair || PyList_SetItem(items, i, pair) < 0) /* steals pair, drops the old item */
            Py_CLEAR(items);
    }
    return items;
}

/* Adds a Response's header pairs (a list, or NULL), checked when they were set. */
static void tb_put_headers(turbo_res *res, const char *label, PyObject *headers) {
    for (Py_ssize_t i = 0; headers && i < PyList_GET_SIZE(headers); i++) {
        PyObject *pair = PyList_GET_ITEM(headers, i);
        Py_ssize_t nn = 0, vn = 0;
        const char *n = NULL, *v = NULL;
        if (PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2 &&
            PyUnicode_Check(PyTuple_GET_ITEM(pair, 0)) && PyUnicode_Check(PyTuple_GET_ITEM(pair, 1))) {
            n = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pair, 0), &nn);
            v = n ? PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pair, 1), &vn) : NULL;
        }
        if (!v || turbo_res_headern(res, n, (size_t)nn, v, (size_t)vn) < 0) {
            PyErr_Clear();
            PySys_FormatStderr("turbo: %s: response header %R refused\n", label, pair);
        }
    }
}

static int tb_has_header(PyObject *headers, const char *name) {
    for (Py_ssize_t i = 0; headers && i < PyList_GET_SIZE(headers); i++) {
        PyObject *pair = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(pair, 0)))
            continue;
        const char *n = PyUnicode_AsUTF8(PyTuple_GET_ITEM(pair, 0));
        if (!n) PyErr_Clear();
        else if (strcasecmp(n, name) == 0) return 1;
    }
    return 0;
}

/* word is in lower case. */
static int tb_contains_nocase(const char *s, size_t n, const char *word) {
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++)
        if ((s[i] | 0x20) == word[0] && strncasecmp(s + i, word, w) == 0) return 1;
    return 0;
}

/* The Content-Type line of a media type, "Content-Type: text/plain;
   charset=utf-8\r\n": checked as turbo_res_header checks a header, with the
   charset Starlette adds to text types. A Response's media_type is checked
   where it is made and again where it is sent (it is writable), and most
   responses share a few media types: the lines of the last ones seen are
   kept, found by the identity of the str (held, so that no other object
   can take its address). GIL held. */
#define TB_CTYPES 8
static struct {
    PyObject *media_type;
    char *line;
    size_t len;
} tb_ctypes[TB_CTYPES];

/* Makes the line of media_type (a str) in its slot: 0, or -1 with an exception. */
static int tb_ctype_make(PyObject *media_type, size_t slot) {
    static const char head[] = "Content-Type: ", charset[] = "; charset=utf-8";
    const char *ct;
    Py_ssize_t n;
    if (tb_check_header(tb_s_content_type, media_type) < 0 || !(ct = PyUnicode_AsUTF8AndSize(media_type, &n)))
        return -1;
    size_t extra = strncasecmp(ct, "text/", 5) == 0 && !tb_contains_nocase(ct, (size_t)n, "charset=")
                       ? sizeof charset - 1
                       : 0;
    size_t need = sizeof head - 1 + (size_t)n + extra + 2;
    char *line = (char *)PyMem_Malloc(need);
    if (!line) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(line, head, sizeof head - 1);
    memcpy(line + sizeof head - 1, ct, (size_t)n);
    memcpy(line + sizeof head - 1 + n, charset, extra);
    memcpy(line + need - 2, "\r\n", 2);
    PyMem_Free(tb_ctypes[slot].line);
    Py_XSETREF(tb_ctypes[slot].media_type, Py_NewRef(media_type));
    tb_ctypes[slot].line = line;
    tb_ctypes[slot].len = need;
    return 0;
}

/* The line of media_type (a str), borrowed, its length in *len; NULL with
   an exception. Inline: a media type seen before costs a comparison. */
static inline const char *tb_ctype_line(PyObject *media_type, size_t *len) {
    size_t slot = ((uintptr_t)media_type >> 4) % TB_CTYPES;
    if (tb_ctypes[slot].media_type != media_type && tb_ctype_make(media_type, slot) < 0) return NULL;
    *len = tb_ctypes[slot].len;
    return tb_ctypes[slot].line;
}

static void tb_send_response(turbo_res *res, const char *label, tb_Response *r) {
    const char *line = NULL;
    size_t len = 0;
    if (!r->body || !turbo_status_allowed(r->status_code)) { /* status_code is writable */
        if (!r->body) /* a subclass whose __init__ skipped Response.__init__ */
            PySys_FormatStderr("turbo: %s: the Response was never initialized\n", label);
        else PySys_FormatStderr("turbo: %s: status %d cannot be sent\n", label, r->status_code);
        tb_send_500(res);
        return;
    }
    if (r->media_type && PyUnicode_Check(r->media_type) && /* NULL after `del r.media_type` */
        !tb_has_header(r->headers, "content-type") && !(line = tb_ctype_line(r->media_type, &len))) {
        tb_log_error_line(label);
        tb_send_500(res);
        return;
    }
    /* Held: a log line below may let another thread change the Response. */
    PyObject *file = r->file && PyBytes_Check(r->file) ? Py_NewRef(r->file) : NULL;
    int status = r->status_code;
    turbo_res_status(res, status);
    tb_put_headers(res, label, r->headers);
    /* Looked up again (found at once): a refused header's log line may have let
       another thread replace, and free, the line in the cache. */
    if (line && r->headers && !(line = tb_ctype_line(r->media_type, &len))) {
        tb_log_error_line(label);
        tb_send_500(res);
        Py_XDECREF(file);
        return;
    }
    /* A file's Content-Type is the handler's header, which keeps turbo from guessing one. */
    if (line && file) turbo_res_headern(res, "Content-Type", 12, line + 14, len - 16);
    else if (line) tb__res_own_header(res, line, len); /* checked once, by tb_ctype_line */
    if (file) { /* opened, and read if small, without the GIL; a big one goes out from the loop */
        Py_BEGIN_ALLOW_THREADS
        if (status == 200) turbo_res_file(res, NULL, PyBytes_AS_STRING(file)); /* or a 304, a 206 */
        else turbo_res_body_file(res, PyBytes_AS_STRING(file));                /* the whole file */
        Py_END_ALLOW_THREADS
        Py_DECREF(file);
    } else if (PyBytes_Check(r->body))
        turbo_res_body(res, PyBytes_AS_STRING(r->body), (size_t)PyBytes_GET_SIZE(r->body));
    else /* an ASCII str: its characters are its UTF-8 */
        turbo_res_body(res, PyUnicode_DATA(r->body), (size_t)PyUnicode_GET_LENGTH(r->body));
}

/* The body of a Response: bytes, or an ASCII str kept as it is (its
   characters are its UTF-8; bytes are made only if .body is read). */
static PyObject *tb_content_body(PyObject *content) {
    if (content == Py_None) return PyBytes_FromStringAndSize("", 0);
    if (PyBytes_Check(content) || (PyUnicode_CheckExact(content) && PyUnicode_IS_COMPACT_ASCII(content)))
        return Py_NewRef(content);
    if (PyUnicode_Check(content)) return PyUnicode_AsUTF8String(content);
    if (PyObject_CheckBuffer(content)) return PyBytes_FromObject(content);
    PyErr_Format(PyExc_TypeError, "Response content must be bytes or str, not '%.200s'",
                 Py_TYPE(content)->tp_name);
    return NULL;
}

/* The work of Response.__init__; a JSONResponse's content is encoded as JSON. */
static int tb_response_fill(tb_Response *r, PyObject *content, int status, PyObject *headers,
                            PyObject *media_type, PyObject *background) {
    int as_json = !Py_IS_TYPE(r, &tb_ResponseType) && PyObject_TypeCheck(r, &tb_JSONResponseType), ok;
    PyObject *body, *list = NULL;
    if (as_json) {
        turbo_buf *buf = tb_to_json(content, 0);
        body = buf ? PyBytes_FromStringAndSize(buf->data, (Py_ssize_t)buf->len) : NULL;
        if (buf) tb_scratch_done(buf);
    } else {
        body = tb_content_body(content);
    }
    if (!body) return -1;
    ok = tb_check_status(status);
    if (ok && headers != Py_None) ok = (list = tb_header_list(headers)) != NULL;
    Py_INCREF(media_type);
    if (ok && media_type == Py_None && Py_TYPE(r) != &tb_ResponseType && Py_TYPE(r) != &tb_JSONResponseType) {
        /* A subclass may name its media type as a class attribute, as in Starlette. */
        PyObject *cls_value = PyObject_GetAttr((PyObject *)Py_TYPE(r), tb_s_media_type);
        if (cls_value && PyUnicode_Check(cls_value)) Py_SETREF(media_type, cls_value);
        else Py_XDECREF(cls_value);
        PyErr_Clear();
    } else if (ok && media_type != Py_None && !PyUnicode_Check(media_type)) {
        PyErr_SetString(PyExc_TypeError, "media_type must be a str or None");
        ok = 0;
    }
    if (ok && as_json && media_type == Py_None) Py_SETREF(media_type, Py_NewRef(tb_s_application_json));
    size_t len;
    if (ok && media_type != Py_None) ok = tb_ctype_line(media_type, &len) != NULL;
    if (!ok) {
        Py_DECREF(body);
        Py_XDECREF(list);
        Py_DECREF(media_type);
        return -1;
    }
    Py_XSETREF(r->body, body);
    Py_XSETREF(r->headers, list); /* NULL: no headers, the list is made if asked for */
    Py_XSETREF(r->media_type, media_type);
    Py_XSETREF(r->background, background == Py_None ? NULL : Py_NewRef(background));
    r->status_code = status;
    return 0;
}

static int tb_response_init(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"content", "status_code", "headers", "media_type", "background", NULL};
    PyObject *content = Py_None, *headers = Py_None, *media_type = Py_None, *background = Py_None;
    int status = 200;
    const char *format =
        PyObject_TypeCheck(self, &tb_JSONResponseType) ? "|OiOOO:JSONResponse" : "|OiOOO:Response";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, format, kwlist, &content, &status, &headers, &media_type,
                                     &background))
        return -1;
    return tb_response_fill((tb_Response *)self, content, status, headers, media_type, background);
}

/* Calling Response or JSONResponse itself (tp_vectorcall is not inherited
   by subclasses) skips the tuple and dict of a generic call. Anything
   unusual (a bad keyword, a status that is not an int) takes the generic
   path, which raises the usual errors. */
/* The last Response freed, zeroed, for the next one made: most handlers
   make one per request. GIL held. */
static tb_Response *tb_response_spare;

static PyObject *tb_response_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf,
                                        PyObject *kwnames) {
    PyObject *const names[] = {tb_s_content, tb_s_status_code, tb_s_headers, tb_s_media_type,
                               tb_s_background};
    PyObject *value[5] = {Py_None, NULL, Py_None, Py_None, Py_None};
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    int fast = nargs <= 5;
    for (Py_ssize_t i = 0; i < nargs && fast; i++) value[i] = args[i];
    for (Py_ssize_t i = 0; i < nkw && fast; i++) {
        Py_ssize_t k = nargs; /* names in code are interned, as these are; others go the generic way */
        while (k < 5 && PyTuple_GET_ITEM(kwnames, i) != names[k]) k++;
        if ((fast = k < 5)) value[k] = args[nargs + i];
    }
    long status = 200;
    if (fast && value[1]) {
        int overflow = 0;
        fast = PyLong_CheckExact(value[1]);
        if (fast) status = PyLong_AsLongAndOverflow(value[1], &overflow);
        fast = fast && !overflow && status >= INT_MIN && status <= INT_MAX;
    }
    PyObject *r;
    if (fast) {
        if (type == (PyObject *)&tb_ResponseType && tb_response_spare) {
            r = PyObject_Init((PyObject *)tb_response_spare, &tb_ResponseType);
            tb_response_spare = NULL;
            PyObject_GC_Track(r);
        } else {
            r = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, 0);
        }
        if (r && tb_response_fill((tb_Response *)r, value[0], (int)status, value[2], value[3], value[4]) < 0)
            Py_CLEAR(r);
    } else { /* type.__call__ bound to the class: the generic call, which does not come here */
        PyObject *generic = PyObject_GetAttrString(type, "__call__");
        r = generic ? PyObject_Vectorcall(generic, args, nargsf, kwnames) : NULL;
        Py_XDECREF(generic);
    }
    return r;
}

/* A Response is a container the collector sees: what is set on it (a
   body_iterator that refers to it, say) may close a cycle. */
static int tb_response_traverse(PyObject *self, visitproc visit, void *arg) {
    tb_Response *r = (tb_Response *)self;
    Py_VISIT(r->headers);
    Py_VISIT(r->media_type);
    Py_VISIT(r->background);
    Py_VISIT(r->file);
    Py_VISIT(r->dict);
    return 0;
}

static int tb_response_clear(PyObject *self) {
    tb_Response *r = (tb_Response *)self;
    Py_CLEAR(r->headers);
    Py_CLEAR(r->media_type);
    Py_CLEAR(r->background);
    Py_CLEAR(r->file);
    Py_CLEAR(r->dict);
    return 0;
}

static void tb_response_dealloc(PyObject *self) {
    tb_Response *r = (tb_Response *)self;
    PyObject_GC_UnTrack(self);
    Py_XDECREF(r->body);
    Py_XDECREF(r->headers);
    Py_XDECREF(r->media_type);
    Py_XDECREF(r->background);
    Py_XDECREF(r->file);
    Py_XDECREF(r->dict);
    if (Py_TYPE(self) == &tb_ResponseType && !tb_response_spare) {
        memset((char *)r + sizeof(PyObject), 0, sizeof *r - sizeof(PyObject));
        tb_response_spare = r;
        return;
    }
    Py_TYPE(self)->tp_free(self);
}

/* The bytes of the body and the list of headers are made when first asked
   for: most responses are sent without anyone asking. */
static PyObject *tb_response_get(PyObject *self, void *headers) {
    tb_Response *r = (tb_Response *)self;
    if (!r->body)
        return PyErr_Format(PyExc_AttributeError, "'%.200s' object has no attribute '%s'",
                            Py_TYPE(self)->tp_name, headers ? "headers" : "body");
    if (headers && !r->headers && !(r->headers = PyList_New(0))) return NULL;
    if (headers) return PyObject_CallOneArg(tb_MutableHeaders, r->headers); /* a view */
    if (!headers && PyUnicode_Check(r->body)) {
        PyObject *bytes = PyUnicode_AsUTF8String(r->body);
        if (!bytes) return NULL;
        Py_SETREF(r->body, bytes);
    }
    return Py_NewRef(r->body);
}

static PyGetSetDef tb_response_getset[] = {
    {"body", tb_response_get, NULL, "The body, bytes.", NULL},
    {"headers", tb_response_get, NULL, "The (name, value) pairs, read and set by name too.", (void *)1},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef tb_response_members[] = {
    {"media_type", T_OBJECT, offsetof(tb_Response, media_type), 0, "The Content-Type, or None."},
    {"status_code", T_INT, offsetof(tb_Response, status_code), 0, "The status."},
    {"background", T_OBJECT, offsetof(tb_Response, background), 0, "Tasks run once it is sent."},
    {"_file", T_OBJECT, offsetof(tb_Response, file), 0, "A file sent as the body (FileResponse)."},
    {NULL, 0, 0, 0, NULL}};

/* ================================================================ route plans */

enum { TB_PATH, TB_QUERY, TB_HEADER, TB_COOKIE, TB_BODY, TB_FORM, TB_FILE, TB_REQUEST }; /* from */
enum { TB_STR, TB_INT, TB_FLOAT, TB_BOOL, TB_DICT, TB_LIST, TB_MODEL, TB_RAW, TB_BYTES, TB_UPLOAD };

static const struct {
    const char *type, *msg;
} tb_conv_error[] = {
    {"string_type", "Input should be a valid string"},
    {"int_parsing", "Input should be a valid integer, unable to parse string as an integer"},
    {"float_parsing", "Input should be a valid number, unable to parse string as a number"},
    {"bool_parsing", "Input should be a valid boolean, unable to interpret input"},
    {"dict_type", "Input should be a valid dictionary"},
    {"list_type", "Input should be a valid list"},
};

typedef struct {
    const char *name;        /* the capture, query, header or cookie name (the alias): pyname's UTF-8 */
    PyObject *pyname;        /* the same, for error locations */
    PyObject *rules;         /* gt, max_length, pattern...: turbo/params.py's rules(), or NULL */
    PyObject *default_value; /* NULL when required; its factory when factory is set */
    PyObject *model;         /* what validates a TB_MODEL body (pydantic's) */
    long rank;               /* checked (and its errors listed) in this order */
    unsigned char source, conv, nullable;
    unsigned char many;    /* every value of the name: 1 in a list, 2 a set, 3 a tuple */
    unsigned char factory; /* default_value is called for each request (default_factory) */
} tb_param;

/* Everything the trampoline needs to call one Python handler. */
typedef struct {
    PyObject *func;
    PyObject *kwnames;      /* keyword-only parameter names, or NULL */
    Py_ssize_t npositional; /* the leading parameters, passed by position */
    int nparams;
    unsigned char order[TB_MAX_ARGS]; /* by rank: errors are listed path, query, body */
    tb_param params[TB_MAX_ARGS];
    int status;
    int is_async;
    int finishes;           /* func returns (result, finish): finish() once the answer is written */
    PyObject *response;     /* shapes results (the response model), or NULL */
    PyObject *app;          /* the turbo.App (borrowed: it owns the plan), for its exception handlers */
    unsigned long failures; /* unhandled exceptions so far (GIL held) */
    char *label;            /* "GET /users/{id}", for logs */
} tb_plan;

static void tb_plan_free(tb_plan *pl) {
    for (int i = 0; i < pl->nparams; i++) {
        Py_XDECREF(pl->params[i].pyname);
        Py_XDECREF(pl->params[i].default_value);
        Py_XDECREF(pl->params[i].model);
        Py_XDECREF(pl->params[i].rules);
    }
    Py_XDECREF(pl->func);
    Py_XDECREF(pl->kwnames);
    Py_XDECREF(pl->response);
    PyMem_Free(pl->label);
    PyMem_Free(pl);
}

static char *tb_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = (char *)PyMem_Malloc(n);
    if (!d) PyErr_NoMemory();
    else memcpy(d, s, n);
    return d;
}

/* The plan's parameters, as turbo/_plans.py's describe() reads them from
   the signature (the names below are its words for source and conv). */
static const char *const tb_source_names[] = {"path", "query", "header", "cookie",
                                              "body", "form",  "file",   "request"};
static const char *const tb_conv_names[] = {"str",  "int",   "float",   "bool",  "dict",
                                            "list", "model", "request", "bytes", "upload"};

static int tb_name_index(PyObject *s, const char *const *names, int n) {
    const char *c = PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : NULL;
    for (int i = 0; c && i < n; i++)
        if (strcmp(c, names[i]) == 0) return i;
    if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "turbo._plans: unknown kind %R", s);
    return -1;
}

static int tb_plan_param(tb_plan *pl, PyObject *desc, PyObject *kwnames) {
    PyObject *name, *key, *source, *conv, *dflt, *model, *rules, *docs; /* docs: the API document's */
    int nullable, kwonly;
    unsigned char many;
    long rank;
    if (!PyArg_ParseTuple(desc, "UUOOpO!OpO!lb|O", &name, &key, &source, &conv, &nullable, &PyTuple_Type,
                          &dflt, &model, &kwonly, &PyTuple_Type, &rules, &rank, &many, &docs))
        return -1;
    if (pl->nparams == TB_MAX_ARGS) {
        PyErr_Format(PyExc_TypeError, "a handler may have at most %d parameters", TB_MAX_ARGS);
        return -1;
    }
    tb_param *q = &pl->params[pl->nparams++];
    int s = tb_name_index(source, tb_source_names, 8),
        k = s < 0 ? -1 : tb_name_index(conv, tb_conv_names, 10);
    if (k < 0 || !(q->name = PyUnicode_AsUTF8(key))) return -1;
    q->source = (unsigned char)s;
    q->conv = (unsigned char)k;
    q->nullable = (unsigned char)nullable;
    q->many = many;
    q->rank = rank;
    q->pyname = Py_NewRef(key);
    if (PyTuple_GET_SIZE(rules)) q->rules = Py_NewRef(rules);
    if (PyTuple_GET_SIZE(dflt)) { /* (value,), or (factory, "factory") */
        q->default_value = Py_NewRef(PyTuple_GET_ITEM(dflt, 0));
        q->factory = PyTuple_GET_SIZE(dflt) == 2;
    }
    if (model != Py_None) {
        q->model = Py_NewRef(model);
        tb_pydantic_base(); /* the program has imported pydantic: the module finds it now */
    }
    if (kwonly) return PyList_Append(kwnames, name);
    pl->npositional++;
    return 0;
}

/* endpoint is the handler as declared, or a turbo.dependencies.Solver; the
   plan calls what describe() says (the handler, or the solver's call). */
static tb_plan *tb_plan_new(PyObject *endpoint, const char *pattern, const char *label, int status) {
    tb_plan *pl = (tb_plan *)PyMem_Calloc(1, sizeof *pl);
    if (!pl) return (tb_plan *)PyErr_NoMemory();
    pl->status = status;
    PyObject *plans = NULL, *described = NULL, *kwnames = NULL, *params, *func;
    int ok = 0;
    if (!(pl->label = tb_strdup(label)) || !(plans = PyImport_ImportModule("turbo._plans")) ||
        !(described = PyObject_CallMethod(plans, "describe", "Os", endpoint, pattern)) ||
        !(kwnames = PyList_New(0)) ||
        !PyArg_ParseTuple(described, "pO!Op", &pl->is_async, &PyTuple_Type, &params, &func, &pl->finishes))
        goto done;
    pl->func = Py_NewRef(func);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(params); i++)
        if (tb_plan_param(pl, PyTuple_GET_ITEM(params, i), kwnames) < 0) goto done;
    if (PyList_GET_SIZE(kwnames) && !(pl->kwnames = PyList_AsTuple(kwnames))) goto done;
    for (int i = 0; i < pl->nparams; i++) { /* a stable insertion sort by rank */
        int k = i;
        for (; k > 0 && pl->params[pl->order[k - 1]].rank > pl->params[i].rank; k--)
            pl->order[k] = pl->order[k - 1];
        pl->order[k] = (unsigned char)i;
    }
    ok = 1;
done:
    Py_XDECREF(plans);
    Py_XDECREF(described);
    Py_XDECREF(kwnames);
    if (ok) return pl;
    tb_plan_free(pl);
    return NULL;
}

/* ================================================================ converting values */

/* Each returns a new reference; NULL without an exception when the text
   does not parse; NULL with one on a real error. Rules as pydantic 2's
   lax mode for strings. */
static PyObject *tb_parse_int(const char *s, size_t n) {
    if (n && n <= 18) { /* the common case first: digits only */
        long long v = 0;
        size_t i = 0;
        while (i < n && Py_ISDIGIT(s[i])) v = v * 10 + (s[i++] - '0');
        if (i == n) return PyLong_FromLongLong(v);
    }
    tb_trim(&s, &n);
    size_t dot = n;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.') dot = i;
    for (size_t i = dot + 1; i < n; i++) /* "12.000" is 12; "12." and "12.5" are not integers */
        if (s[i] != '0') return NULL;
    if (dot < n && dot + 1 == n) return NULL;
    size_t start = (dot && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    if (start == dot) return NULL;
    for (size_t i = start; i < dot; i++)
        if (!Py_ISDIGIT(s[i]) && s[i] != '_') return NULL;
    char *digits = tb_copy_without_underscores(s, dot);
    if (!digits) return NULL;
    PyObject *v = PyLong_FromString(digits, NULL, 10);
    PyMem_Free(digits);
    if (!v && PyErr_ExceptionMatches(PyExc_ValueError)) /* e.g. more digits than Python allows */
        PyErr_Clear();
    return v;
}

static PyObject *tb_parse_float(const char *s, size_t n) {
    tb_trim(&s, &n);
    if (n == 0 || memchr(s, '\0', n)) return NULL; /* a NUL would end the C string early */
    char *text = tb_copy_without_underscores(s, n);
    if (!text) return NULL;
    char *end;
    double d = PyOS_string_to_double(text, &end, NULL);
    int whole = *end == '\0';
    PyMem_Free(text);
    if (d == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) return NULL;
        PyErr_Clear();
    }
    return whole && !PyErr_Occurred() ? PyFloat_FromDouble(d) : NULL;
}

static PyObject *tb_parse_bool(const char *s, size_t n) {
    static const char *const words[] = {"0", "off", "f", "false", "n", "no",
                                        "1", "on",  "t", "true",  "y", "yes"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strlen(words[i]) == n && strncasecmp(s, words[i], n) == 0) return PyBool_FromLong(i >= 6);
    return NULL;
}

static PyObject *tb_convert(int conv, const char *s, size_t n) {
    if (conv == TB_INT) return tb_parse_int(s, n);
    if (conv == TB_FLOAT) return tb_parse_float(s, n);
    if (conv == TB_BOOL) return tb_parse_bool(s, n);
    return PyUnicode_DecodeUTF8(n ? s : "", (Py_ssize_t)n, "replace");
}

/* Appends {"type","loc","msg","input"} to *errors (made on first use);
   loc is [where] or [where, name]. */
static int tb_add_error(PyObject **errors, const char *type, const char *where, PyObject *name,
                        const char *msg, PyObject *input) {
    if (!*errors && !(*errors = PyList_New(0))) return -1;
    PyObject *e =
        name ? Py_BuildValue("{s:s,s:[s,O],s:s,s:O}", "type", type, "loc", where, name, "msg", msg, "input",
                             input)
             : Py_BuildValue("{s:s,s:[s],s:s,s:O}", "type", type, "loc", where, "msg", msg, "input", input);
    if (!e) return -1;
    int rc = PyList_Append(*errors, e);
    Py_DECREF(e);
    return rc;
}

/* A value the request does not have: its default (made by its factory),
   or a missing error. 0, or -1 with an exception. */
static int tb_absent(tb_param *q, const char *where, PyObject *name, PyObject **out, PyObject **errors) {
    if (!q->default_value) return tb_add_error(errors, "missing", where, name, "Field required", Py_None);
    if (q->factory) return (*out = PyObject_CallNoArgs(q->default_value)) ? 0 : -1;
    *out = Py_NewRef(q->default_value);
    return 0;
}

/* Does value keep the rule (rule, bound, type, message, ctx)? 1, 0, or -1
   with an exception. */
static int tb_rule_kept(PyObject *rule, PyObject *value) {
    const char *r = PyUnicode_AsUTF8(PyTuple_GET_ITEM(rule, 0));
    PyObject *bound = PyTuple_GET_ITEM(rule, 1);
    if (!r) return -1;
    if (strcmp(r, "min_length") == 0 || strcmp(r, "max_length") == 0) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(value), limit = PyLong_AsSsize_t(bound);
        if (limit == -1 && PyErr_Occurred()) return -1;
        return r[1] == 'i' ? n >= limit : n <= limit;
    }
    if (strcmp(r, "pattern") == 0) {
        PyObject *m = PyObject_CallMethod(bound, "search", "O", value);
        int found = m ? m != Py_None : -1;
        Py_XDECREF(m);
        return found;
    }
    if (strcmp(r, "multiple_of") == 0) {
        PyObject *rest = PyNumber_Remainder(value, bound);
        int kept = rest ? !PyObject_IsTrue(rest) : -1;
        Py_XDECREF(rest);
        return kept;
    }
    int op = r[0] == 'g' ? (r[1] == 't' ? Py_GT : Py_GE) : (r[1] == 't' ? Py_LT : Py_LE);
    return PyObject_RichCompareBool(value, bound, op);
}

/* The first of q's rules that *out breaks becomes pydantic 2's error (and
   *out is dropped). 0, or -1 with an exception. */
static int tb_check_rules(tb_param *q, const char *where, PyObject **out, PyObject *input,
                          PyObject **errors) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(q->rules); i++) {
        PyObject *rule = PyTuple_GET_ITEM(q->rules, i);
        int kept = tb_rule_kept(rule, *out);
        if (kept < 0) return -1;
        if (kept) continue;
        Py_CLEAR(*out);
        const char *type = PyUnicode_AsUTF8(PyTuple_GET_ITEM(rule, 2));
        const char *msg = type ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(rule, 3)) : NULL;
        if (!msg || tb_add_error(errors, type, where, q->pyname, msg, input) < 0) return -1;
        return PyDict_SetItemString(PyList_GET_ITEM(*errors, PyList_GET_SIZE(*errors) - 1), "ctx",
                                    PyTuple_GET_ITEM(rule, 4));
    }
    return 0;
}

/* pydantic's own errors, with where (and a value's name) prepended to
   each loc, as FastAPI does (_support.model_errors). */
static PyObject *tb_model_errors;

static int tb_add_model_errors(PyObject **errors, const char *where, PyObject *name) {
    PyObject *exc = tb_take_exception();
    PyObject *list = !exc   ? NULL
                     : name ? PyObject_CallFunction(tb_model_errors, "OsO", exc, where, name)
                            : PyObject_CallFunction(tb_model_errors, "Os", exc, where);
    Py_XDECREF(exc);
    int rc = list && (*errors || (*errors = PyList_New(0)))
                 ? PyList_SetSlice(*errors, PY_SSIZE_T_MAX, PY_SSIZE_T_MAX, list) /* appends them */
                 : -1;
    Py_XDECREF(list);
    return rc;
}

/* 0 with *out set or an error appended; -1 with an exception. A header's
   or a cookie's text is Latin-1, as Starlette (and request.headers) reads
   header bytes; the query's and the path's, UTF-8. */
static int tb_arg_scalar(tb_param *q, const char *where, const char *s, size_t n, PyObject **out,
                         PyObject **errors) {
    int latin1 = q->source == TB_HEADER || q->source == TB_COOKIE;
    *out = latin1 && q->conv == TB_STR ? PyUnicode_DecodeLatin1(s, (Py_ssize_t)n, NULL)
                                       : tb_convert(q->conv, s, n);
    if (*out && q->model) { /* a type C does not convert (an Enum, a date...): pydantic's, of the text */
        Py_SETREF(*out, PyObject_CallOneArg(q->model, *out));
        if (*out || !PyErr_ExceptionMatches(tb_ValidationError)) return *out ? 0 : -1;
        return tb_add_model_errors(errors, where, q->pyname);
    }
    if (*out && !q->rules) return 0;
    if (!*out && PyErr_Occurred()) return -1;
    PyObject *input = latin1 ? PyUnicode_DecodeLatin1(s, (Py_ssize_t)n, NULL)
                             : PyUnicode_DecodeUTF8(n ? s : "", (Py_ssize_t)n, "replace");
    int rc = !input ? -1
             : *out ? tb_check_rules(q, where, out, input, errors)
                    : tb_add_error(errors, tb_conv_error[q->conv].type, where, q->pyname,
                                   tb_conv_error[q->conv].msg, input);
    Py_XDECREF(input);
    return rc;
}

/* The value of cookie name in the Cookie header, as Starlette reads it (and
   turbo/_support.py's request_cookies): pairs split at ';' and their first
   '=', name and value trimmed, a value's double quotes taken off (*quoted
   says so), the last of a repeated name. */
static int tb_cookie_get(turbo_req *req, const char *name, turbo_str *out, int *quoted) {
    turbo_str h = turbo_req_header(req, "cookie");
    size_t n = strlen(name), i = 0;
    int found = 0, dquoted;
    while (h.ptr && i < h.len) {
        const char *key = h.ptr + i;
        while (i < h.len && h.ptr[i] != ';') i++;
        const char *end = h.ptr + i++, *eq = memchr(key, '=', (size_t)(end - key)); /* i past ';' */
        if (!eq) continue;
        const char *value = eq + 1;
        size_t klen = (size_t)(eq - key), vlen = (size_t)(end - value);
        tb_trim(&key, &klen);
        tb_trim(&value, &vlen);
        if ((dquoted = vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"')) value++, vlen -= 2;
        if (klen == n && memcmp(key, name, n) == 0) {
            out->ptr = value;
            out->len = vlen;
            *quoted = dquoted;
            found = 1;
        }
    }
    return found;
}

/* A double-quoted cookie value with its backslash escapes undone, as
   http.cookies (so Starlette's request.cookies) undoes them: "\ooo" is
   the code point ooo (octal, below 0400), "\c" is c. */
static int tb_arg_unescaped(tb_param *q, const char *where, turbo_str v, PyObject **out, PyObject **errors) {
    char *text = PyMem_Malloc(v.len), *o = text; /* never longer: "\ooo" is one byte */
    const char *p = v.ptr, *end = v.ptr + v.len;
    if (!text) return PyErr_NoMemory(), -1;
    while (p < end) {
        if (*p != '\\' || end - p < 2) {
            *o++ = *p++;
        } else if (end - p >= 4 && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
                   p[3] <= '7') {
            *o++ = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0')); /* a Latin-1 code point */
            p += 4;
        } else {
            *o++ = p[1];
            p += 2;
        }
    }
    int rc = tb_arg_scalar(q, where, text, (size_t)(o - text), out, errors);
    PyMem_Free(text);
    return rc;
}

/* The one value of a query parameter, a header or a cookie: 0 with *out
   set or an error appended, 1 after answering (a malformed query), or -1
   with an exception. */
static int tb_arg_single(tb_param *q, turbo_req *req, turbo_res *res, PyObject **out, PyObject **errors) {
    const char *where = tb_source_names[q->source];
    turbo_str v = {NULL, 0};
    int quoted = 0;
    int found = q->source == TB_QUERY    ? turbo_req_query_get(req, q->name, &v)
                : q->source == TB_HEADER ? (v = turbo_req_header(req, q->name)).ptr != NULL
                                         : tb_cookie_get(req, q->name, &v, &quoted);
    if (found > 0 && quoted && memchr(v.ptr, '\\', v.len)) return tb_arg_unescaped(q, where, v, out, errors);
    if (found > 0) return tb_arg_scalar(q, where, v.len ? v.ptr : "", v.len, out, errors);
    if (found < 0) {
        static const char body[] = "{\"detail\":\"Malformed query string\"}";
        turbo_res_send(res, 400, "application/json", body, sizeof body - 1);
        return 1;
    }
    return tb_absent(q, where, q->pyname, out, errors);
}

/* Appends to values each value named q->name in an urlencoded text (a
   query, or a form body) as a decoded str. 0, or -1 with an exception. */
static int tb_pairs_named(tb_param *q, turbo_str rest, PyObject *values) {
    turbo_str name, value;
    while (turbo_query_next(&rest, &name, &value)) {
        PyObject *k = tb_decoded_str(name.ptr, name.len, TB_PLUS_IS_SPACE);
        int match = k ? PyUnicode_CompareWithASCIIString(k, q->name) == 0 : -1;
        Py_XDECREF(k);
        if (match < 0) return -1;
        if (match && tb_append(values, tb_decoded_str(value.ptr, value.len, TB_PLUS_IS_SPACE)) < 0) return -1;
    }
    return 0;
}

static PyObject *tb_UploadFile; /* _support.UploadFile */

/* A part of a multipart body as the parameter takes it: text for a field,
   bytes or an UploadFile for a file. */
static PyObject *tb_part_value(tb_param *q, const turbo_part *p) {
    const char *data = p->data.len ? p->data.ptr : "";
    if (q->source != TB_FILE) return PyUnicode_DecodeUTF8(data, (Py_ssize_t)p->data.len, "replace");
    if (q->conv == TB_BYTES) return PyBytes_FromStringAndSize(data, (Py_ssize_t)p->data.len);
    return PyObject_CallFunction(tb_UploadFile, "s#s#y#y#", p->filename.len ? p->filename.ptr : "",
                                 (Py_ssize_t)p->filename.len, p->content_type.ptr,
                                 (Py_ssize_t)p->content_type.len, data, (Py_ssize_t)p->data.len, p->head.ptr,
                                 (Py_ssize_t)p->head.len);
}

/* Every value named q->name that the request has for the parameter's
   source (query, header, form field or file), in order, appended to
   values. 0, 1 for a malformed multipart body, -1 with an exception. */
static int tb_values_named(tb_param *q, turbo_req *req, PyObject *values) {
    turbo_str ct = turbo_req_header(req, "content-type");
    turbo_multipart m;
    turbo_part part;
    int rc;
    if (q->source == TB_QUERY) return tb_pairs_named(q, turbo_req_query(req), values);
    if (q->source == TB_HEADER) {
        for (int i = 0, n = turbo_req_header_count(req); i < n; i++) {
            turbo_str k = turbo_req_header_name(req, i), v = turbo_req_header_value(req, i);
            if (strlen(q->name) == k.len && strncasecmp(k.ptr, q->name, k.len) == 0 &&
                tb_append(values, PyUnicode_DecodeLatin1(v.len ? v.ptr : "", (Py_ssize_t)v.len, NULL)) < 0)
                return -1;
        }
        return 0;
    }
    if (!turbo_req_body(req).len) return 0; /* no parts, as Starlette finds in an empty multipart body */
    if (turbo_multipart_begin(&m, ct, turbo_req_body(req)) != 0)
        return q->source == TB_FORM && ct.len >= 33 &&
                       strncasecmp(ct.ptr, "application/x-www-form-urlencoded", 33) == 0
                   ? tb_pairs_named(q, turbo_req_body(req), values)
                   : 0;
    while ((rc = turbo_multipart_next(&m, &part)) == 1) {
        if (part.name.len != strlen(q->name) || memcmp(part.name.ptr, q->name, part.name.len) != 0 ||
            (q->conv == TB_UPLOAD && !part.filename.ptr))
            continue;
        if (tb_append(values, tb_part_value(q, &part)) < 0) return -1;
    }
    return rc < 0;
}

/* A value from tb_values_named (or a decoded path capture) as the
   parameter's type: text is converted (errors located at index when the
   parameter is a list); a file is kept. */
static int tb_arg_item(tb_param *q, const char *where, PyObject *v, Py_ssize_t index, PyObject **out,
                       PyObject **errors) {
    Py_ssize_t n, before = *errors ? PyList_GET_SIZE(*errors) : 0;
    if (!PyUnicode_Check(v)) {
        *out = Py_NewRef(v);
        return 0;
    }
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (!s || tb_arg_scalar(q, where, s, (size_t)n, out, errors) < 0) return -1;
    for (Py_ssize_t i = before; index >= 0 && *errors && i < PyList_GET_SIZE(*errors); i++) {
        PyObject *e = PyList_GET_ITEM(*errors, i), *loc = PyDict_GetItemString(e, "loc");
        PyObject *longer = loc ? PySequence_List(loc) : NULL; /* pydantic's is a tuple */
        int rc = longer && tb_append(longer, PyLong_FromSsize_t(index)) == 0
                     ? PyDict_SetItemString(e, "loc", longer)
                     : -1;
        Py_XDECREF(longer);
        if (rc < 0) return -1;
    }
    return 0;
}

static int tb_arg_path(tb_param *q, turbo_req *req, PyObject **out, PyObject **errors) {
    turbo_str v = turbo_req_param(req, q->name);
    if (!v.len || !memchr(v.ptr, '%', v.len))
        return tb_arg_scalar(q, "path", v.len ? v.ptr : "", v.len, out, errors);
    PyObject *text = tb_decoded_str(v.ptr, v.len, 0); /* bad UTF-8 fails every type but str */
    int rc = text ? tb_arg_item(q, "path", text, -1, out, errors) : -1;
    Py_XDECREF(text);
    return rc;
}

/* A parameter read through tb_values_named: a list parameter takes them
   all, another the last (as Starlette's multi-dicts give it). 0, 1 after
   answering 400, -1 with an exception. */
static int tb_arg_named(tb_param *q, turbo_req *req, turbo_res *res, PyObject **out, PyObject **errors) {
    const char *where = q->source == TB_QUERY ? "query" : q->source == TB_HEADER ? "header" : "body";
    PyObject *values = PyList_New(0);
    int rc = values ? tb_values_named(q, req, values) : -1;
    Py_ssize_t n = rc == 0 ? PyList_GET_SIZE(values) : 0;
    /* A form's blank field is a missing one, as FastAPI has it: an HTML form
       sends its empty inputs as "". */
    PyObject *last = n ? PyList_GET_ITEM(values, n - 1) : NULL;
    int blank = q->source == TB_FORM && !q->many && last && PyUnicode_Check(last) && !PyUnicode_GET_LENGTH(last);
    if (rc > 0) {
        static const char body[] = "{\"detail\":\"There was an error parsing the body\"}";
        turbo_res_send(res, 400, "application/json", body, sizeof body - 1);
    } else if (rc == 0 && (n == 0 || blank)) {
        rc = tb_absent(q, where, q->pyname, out, errors);
    } else if (rc == 0 && !q->many) {
        rc = tb_arg_item(q, where, last, -1, out, errors);
    } else if (rc == 0) {
        PyObject *list = PyList_New(n);
        for (Py_ssize_t i = 0; list && rc == 0 && i < n; i++) {
            PyObject *item = NULL;
            rc = tb_arg_item(q, where, PyList_GET_ITEM(values, i), i, &item, errors);
            PyList_SET_ITEM(list, i, item ? item : Py_NewRef(Py_None));
        }
        if (list && q->many > 1) Py_SETREF(list, q->many == 2 ? PySet_New(list) : PyList_AsTuple(list));
        if (!list) rc = -1;
        if (rc == 0 && *out == NULL && list) *out = list;
        else Py_XDECREF(list);
    }
    Py_XDECREF(values);
    return rc;
}

/* FastAPI reads a body as JSON when there is no Content-Type or it is
   application/json or application/...+json. */
static int tb_is_json_request(turbo_req *req) {
    turbo_str ct = turbo_req_header(req, "content-type");
    if (!ct.ptr || !ct.len) return 1;
    size_t n = 0;
    while (n < ct.len && ct.ptr[n] != ';') n++;
    while (n && (ct.ptr[n - 1] == ' ' || ct.ptr[n - 1] == '\t')) n--;
    if (n < 12 || strncasecmp(ct.ptr, "application/", 12) != 0) return 0;
    return (n == 16 && strncasecmp(ct.ptr + 12, "json", 4) == 0) ||
           (n > 17 && strncasecmp(ct.ptr + n - 5, "+json", 5) == 0);
}

static int tb_add_json_invalid(PyObject **errors) {
    PyObject *exc = tb_take_exception();
    PyObject *pos = PyObject_GetAttrString(exc, "pos");
    PyObject *msg = pos ? PyObject_GetAttrString(exc, "msg") : NULL;
    PyObject *e = msg ? Py_BuildValue("{s:s,s:[s,O],s:s,s:{},s:{s:O}}", "type", "json_invalid", "loc", "body",
                                      pos, "msg", "JSON decode error", "input", "ctx", "error", msg)
                      : NULL;
    int rc = -1;
    if (e && (*errors || (*errors = PyList_New(0)))) rc = PyList_Append(*errors, e);
    Py_XDECREF(e);
    Py_XDECREF(msg);
    Py_XDECREF(pos);
    Py_DECREF(exc);
    return rc;
}

static int tb_check_body(tb_param *q, PyObject *value, PyObject **out, PyObject **errors) {
    if (q->conv == TB_MODEL) { /* q->model validates: turbo/_plans.py's validator() */
        if ((*out = PyObject_CallOneArg(q->model, value))) return 0;
        return PyErr_ExceptionMatches(tb_ValidationError) ? tb_add_model_errors(errors, "body", NULL) : -1;
    }
    if (q->conv == TB_DICT ? PyDict_Check(value) : PyList_Check(value)) {
        *out = Py_NewRef(value);
        return 0;
    }
    PyObject *input = PyBytes_Check(value)
                          ? PyUnicode_DecodeUTF8(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), "replace")
                          : Py_NewRef(value);
    int rc = input ? tb_add_error(errors, tb_conv_error[q->conv].type, "body", NULL,
                                  tb_conv_error[q->conv].msg, input)
                   : -1;
    Py_XDECREF(input);
    return rc;
}

/* 0, 1 after answering (a body that is not text), or -1 with an exception. */
static int tb_arg_body(tb_param *q, turbo_req *req, turbo_res *res, PyObject **out, PyObject **errors) {
    turbo_str b = turbo_req_body(req);
    if (!b.len) return tb_absent(q, "body", NULL, out, errors);
    int json = tb_is_json_request(req); /* the bytes only for other types: JSON is decoded from the request */
    PyObject *value = json ? tb_loads(b.ptr, b.len) : PyBytes_FromStringAndSize(b.ptr, (Py_ssize_t)b.len);
    if (!value && !json) return -1;
    if (!value) {
        if (PyErr_ExceptionMatches(tb_JSONDecodeError)) return tb_add_json_invalid(errors);
        if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
        PyErr_Clear(); /* not UTF-8, nested too deep, too many digits: as FastAPI */
        static const char body[] = "{\"detail\":\"There was an error parsing the body\"}";
        turbo_res_send(res, 400, "application/json", body, sizeof body - 1);
        return 1;
    }
    /* A JSON null is no body either. */
    int rc =
        value == Py_None ? tb_absent(q, "body", NULL, out, errors) : tb_check_body(q, value, out, errors);
    Py_DECREF(value);
    return rc;
}

static void tb_answer_value(turbo_res *res, tb_plan *pl, PyObject *result);
static void tb_log_route_exception(tb_plan *pl, PyObject *exc);
static void tb_await(turbo_res *res, tb_plan *pl, PyObject *coro, PyObject *request, int answer);

/* The app's exception handlers, FastAPI's default one for HTTPException
   among them (App._handle_exception, _handle_invalid in turbo/__init__.py),
   given the request when there is one: 1 after answering with what one
   returned (awaited on the asyncio loop when it is a coroutine: an async
   handler's), or with a 500 if it raised; 0 when none applies. */
static int tb_handled(turbo_res *res, tb_plan *pl, const char *method, PyObject *what, PyObject *request) {
    PyObject *r = PyObject_CallMethod(pl->app, method, "OO", what, request ? request : Py_None);
    if (r == Py_None) {
        Py_DECREF(r);
        return 0;
    }
    if (!r) {
        tb_log_route_exception(pl, NULL);
        tb_send_500(res);
        return 1;
    }
    if (PyCoro_CheckExact(r)) tb_await(res, pl, r, request, 1);
    else tb_answer_value(res, pl, r);
    Py_DECREF(r);
    return 1;
}

/* Fills args[0..nparams) with new references, *request (NULL, or a
   WebSocket) the Request among them. 0; 1 after answering the request
   itself (422, 400); -1 with an exception. */
static int tb_build_args(tb_plan *pl, turbo_req *req, turbo_res *res, PyObject **args, tb_Request **request) {
    PyObject *errors = NULL;
    int rc = 0, handshake = *request != NULL; /* a WebSocket route's */
    for (int i = 0; i < pl->nparams; i++) args[i] = NULL;
    for (int k = 0; k < pl->nparams && rc == 0; k++) {
        int i = pl->order[k];
        tb_param *q = &pl->params[i];
        switch (q->source) {
        case TB_PATH: rc = tb_arg_path(q, req, &args[i], &errors); break;
        case TB_QUERY:
        case TB_HEADER:
        case TB_COOKIE:
            rc = q->many ? tb_arg_named(q, req, res, &args[i], &errors)
                         : tb_arg_single(q, req, res, &args[i], &errors);
            break;
        case TB_FORM:
        case TB_FILE: rc = tb_arg_named(q, req, res, &args[i], &errors); break;
        case TB_BODY: rc = tb_arg_body(q, req, res, &args[i], &errors); break;
        default: /* one Request for every such parameter: a WebSocket route's is made first */
            if (!errors) {
                args[i] = *request ? (PyObject *)*request : tb_request_new(req);
                Py_XINCREF(*request);
                *request = (tb_Request *)args[i];
                rc = args[i] ? 0 : -1;
            }
        }
    }
    if (rc == 0 && errors) {
        PyObject *about = tb_request_new(req);
        PyObject *detail = Py_BuildValue("{s:O}", "detail", errors); /* the 422's body, sent leniently */
        rc = (about && tb_handled(res, pl, handshake ? "_handle_invalid_handshake" : "_handle_invalid",
                                  errors, about)) ||
                     (detail && tb_send_json(res, 422, detail, 1) >= 0)
                 ? 1
                 : -1;
        Py_XDECREF(detail);
        if (about) tb_request_detach((tb_Request *)about, pl->label);
        Py_XDECREF(about);
    }
    Py_XDECREF(errors);
    if (rc != 0) {
        for (int i = 0; i < pl->nparams; i++) Py_CLEAR(args[i]);
        *request = NULL;
    }
    return rc;
}

/* ================================================================ the trampoline */

/* Answers with what a handler returned. GIL held. */
static void tb_answer_exception(turbo_res *res, tb_plan *pl, PyObject *exc, PyObject *request);

static void tb_answer_asgi(turbo_res *res, tb_plan *pl, PyObject *app);

static void tb_answer_value(turbo_res *res, tb_plan *pl, PyObject *result) {
    int plain_json = PyDict_CheckExact(result) || PyUnicode_CheckExact(result); /* most often */
    PyObject *shaped = NULL;
    if (pl->response &&
        (plain_json || !(PyObject_TypeCheck(result, &tb_ResponseType) || PyCallable_Check(result)))) {
        if (!(shaped = PyObject_CallOneArg(pl->response, result))) {
            tb_answer_exception(res, pl, NULL, NULL); /* as FastAPI: a 500 */
            return;
        }
        result = shaped;
        plain_json = 0;
    }
    PyObject *background = NULL;
    if (!plain_json && PyObject_TypeCheck(result, &tb_ResponseType)) {
        tb_send_response(res, pl->label, (tb_Response *)result);
        background = ((tb_Response *)result)->background;
    } else if (!plain_json && PyCallable_Check(result)) {
        tb_answer_asgi(res, pl, result);
    } else if (!plain_json && PyBytes_Check(result)) { /* turbo drops the body of a 204 or a 304 */
        turbo_res_send(res, pl->status, "application/octet-stream", PyBytes_AS_STRING(result),
                       (size_t)PyBytes_GET_SIZE(result));
    } else if (tb_send_json(res, pl->status, result, 0) < 0) {
        tb_log_error_line(pl->label);
        tb_send_500(res);
    }
    PyObject *later = background ? PyObject_CallMethod(background, "run_later", NULL) : NULL;
    if (background && !later) tb_log_error_line(pl->label);
    Py_XDECREF(later);
    Py_XDECREF(shaped);
}

/* With yield dependencies (pl->finishes) a result is (value, finish): the
   cleanup, finish(), runs once the answer is made, as in FastAPI. */
static void tb_answer(turbo_res *res, tb_plan *pl, PyObject *result) {
    if (!pl->finishes) {
        tb_answer_value(res, pl, result);
        return;
    }
    if (!PyTuple_CheckExact(result) || PyTuple_GET_SIZE(result) != 2) {
        PyErr_SetString(PyExc_SystemError, "a dependency solver returned no (result, finish)");
        tb_answer_exception(res, pl, NULL, NULL);
        return;
    }
    tb_answer_value(res, pl, PyTuple_GET_ITEM(result, 0));
    PyObject *done = PyObject_CallNoArgs(PyTuple_GET_ITEM(result, 1));
    if (!done) tb_log_route_exception(pl, NULL);
    Py_XDECREF(done);
}

/* A route's first TB_FULL_TRACEBACKS exceptions are logged with their
   traceback, then one in TB_TRACEBACK_EVERY; the others as one line with
   their count, so that a client cannot grow the log by a traceback per
   request. exc NULL: the raised exception, taken. */
#define TB_FULL_TRACEBACKS 10
#define TB_TRACEBACK_EVERY 100
static void tb_log_route_exception(tb_plan *pl, PyObject *exc) {
    PyObject *raised = exc ? NULL : (exc = tb_take_exception());
    char note[96];
    if (!exc) return;
    unsigned long n = ++pl->failures;
    if (n <= TB_FULL_TRACEBACKS || n % TB_TRACEBACK_EVERY == 0) {
        tb_log_exception(pl->label, exc);
        if (n == TB_FULL_TRACEBACKS)
            PySys_FormatStderr("turbo: %s: %d unhandled exceptions: from now on one line each, "
                               "with the traceback of one in %d\n",
                               pl->label, TB_FULL_TRACEBACKS, TB_TRACEBACK_EVERY);
    } else {
        snprintf(note, sizeof note, " (unhandled exception %lu of this route)", n);
        tb_log_line(pl->label, exc, note);
    }
    Py_XDECREF(raised);
}

/* Answers with an exception: exc (stolen), or the raised one if NULL;
   request (borrowed, or NULL: None) is the exception handler's. */
static void tb_answer_exception(turbo_res *res, tb_plan *pl, PyObject *exc, PyObject *request) {
    if (!exc && !(exc = tb_take_exception())) {
        tb_send_500(res);
        return;
    }
    if (!tb_handled(res, pl, "_handle_exception", exc, request)) { /* not an HTTPException either */
        tb_log_route_exception(pl, exc);
        tb_send_500(res);
    }
    Py_DECREF(exc);
}

/* The Request an exception handler is given: the handler's own, else one
   made now (while req lasts; a copy of req for an answer deferred past it)
   when the app has exception handlers. A new reference; NULL for None. */
static PyObject *tb_request_for_errors(tb_plan *pl, turbo_req *req, tb_Request *request, int deferred) {
    if (request) return Py_NewRef(request);
    PyObject *handlers = PyObject_GetAttr(pl->app, tb_s_exception_handlers);
    int any = handlers && PyDict_Check(handlers) && PyDict_GET_SIZE(handlers) > 0;
    Py_XDECREF(handlers);
    PyObject *made = !any ? NULL : deferred ? tb_request_copy(req) : tb_request_new(req);
    PyErr_Clear(); /* without one (out of memory), the handler gets None */
    return made;
}

/* The turbo_handler of every Python route; user is the route's plan. */
static void tb_py_handler(turbo_req *req, turbo_res *res, void *user) {
    tb_plan *pl = (tb_plan *)user;
    PyObject *stack[TB_MAX_ARGS + 1], **args = stack + 1; /* args[-1] free for vectorcall */
    tb_Request *request = NULL;
    int rc = pl->nparams ? tb_build_args(pl, req, res, args, &request) : 0;
    if (rc == 0) {
        PyObject *result = PyObject_Vectorcall(
            pl->func, args, (size_t)pl->npositional | PY_VECTORCALL_ARGUMENTS_OFFSET, pl->kwnames);
        PyObject *exc = result ? NULL : tb_take_exception(); /* before any other call */
        int deferred = result && (pl->is_async || PyCoro_CheckExact(result));
        Py_XINCREF(request); /* kept past the arguments, for an exception handler */
        for (int i = 0; i < pl->nparams; i++) Py_DECREF(args[i]);
        PyObject *about = result && !deferred ? NULL : tb_request_for_errors(pl, req, request, deferred);
        if (!result) tb_answer_exception(res, pl, exc, about);
        else if (deferred) tb_await(res, pl, result, about, 0);
        else tb_answer(res, pl, result);
        if (about && about != (PyObject *)request) tb_request_detach((tb_Request *)about, pl->label);
        Py_XDECREF(about);
        if (request) tb_request_detach(request, pl->label); /* copied if kept: by a coroutine, say */
        Py_XDECREF(request);
        Py_XDECREF(result);
    } else if (rc < 0) {
        tb_answer_exception(res, pl, NULL, NULL);
    }
}

/* ================================================================ async handlers */

/* One awaited request: the done-callback of its future (tp_call) stores
   the outcome and resumes the deferred answer on the worker thread. */
typedef struct {
    PyObject_HEAD
    turbo_defer *defer; /* NULL once resumed */
    tb_plan *plan;
    PyObject *result, *error;
    PyObject *request; /* for an exception handler, or NULL */
    int answer;        /* the coroutine is an exception handler's: it gives the answer */
} tb_Pending;

/* On the loop's thread, answers are resumed together once the loop's turn
   is over (by a callback queued behind its tasks): the worker is woken once
   for all of them, and does not take the CPU from the loop between two. */
static struct {
    turbo_resumption held[256];
    size_t n;
    int known; /* thread is the loop's */
    pthread_t thread;
} tb_loop_answers;

static PyObject *tb_loop_flush(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) {
    turbo_resumption batch[256];
    size_t n = tb_loop_answers.n;
    memcpy(batch, tb_loop_answers.held, n * sizeof *batch); /* resuming may hold more */
    tb_loop_answers.n = 0;
    turbo_defer_resume_all(batch, n);
    Py_RETURN_NONE;
}

static PyMethodDef tb_loop_flush_def = {"flush", tb_loop_flush, METH_NOARGS, NULL};
static PyObject *tb_loop_flush_fn; /* made once, with the loop */

static void tb_loop_resume(turbo_defer *d, void (*fn)(turbo_res *res, void *arg), void *arg) {
    int held = tb_loop_answers.known && pthread_equal(pthread_self(), tb_loop_answers.thread);
    if (held && tb_loop_answers.n == 0) {
        PyObject *queued = PyObject_CallOneArg(tb_loop_call_soon, tb_loop_flush_fn);
        held = queued != NULL;
        PyErr_Clear();
        Py_XDECREF(queued);
    }
    if (!held) { /* elsewhere (a done-callback runs where it is added, if late) */
        turbo_defer_resume(d, fn, arg);
        return;
    }
    tb_loop_answers.held[tb_loop_answers.n++] = (turbo_resumption){d, fn, arg};
    if (tb_loop_answers.n == sizeof tb_loop_answers.held / sizeof *tb_loop_answers.held)
        Py_DECREF(tb_loop_flush(NULL, NULL));
}

static void tb_resume(turbo_res *res, void *arg) {
    tb_Pending *p = (tb_Pending *)arg;
    /* After shutdown turbo calls this at once from the resuming thread,
       which then holds the GIL (the loop's, or the one cancelling its tasks). */
    int held = !res && PyGILState_Check();
    if (!held && tb_gil_take(res) < 0) return; /* p is lost: without the GIL it cannot be released */
    if (res && p->result && p->answer) {
        tb_answer_value(res, p->plan, p->result);
    } else if (res && p->result) {
        tb_answer(res, p->plan, p->result);
    } else if (res && p->answer) { /* the handler raised, and so did the one for 500, if any */
        tb_log_route_exception(p->plan, p->error);
        tb_send_500(res);
    } else if (res) {
        tb_answer_exception(res, p->plan, Py_XNewRef(p->error), p->request);
    }
    /* The future keeps p among its callbacks, and an error's traceback
       keeps the future (a frame of its result()): p is no container the
       collector sees, so that cycle is broken here. */
    Py_CLEAR(p->result);
    Py_CLEAR(p->error);
    Py_CLEAR(p->request);
    Py_DECREF(p);
    if (!held) tb_gil_drop();
}

/* Runs on the loop's thread, GIL held, when the future is done. */
static PyObject *tb_pending_call(PyObject *self, PyObject *args, PyObject *kwds) {
    tb_Pending *p = (tb_Pending *)self;
    PyObject *future;
    if (kwds || !PyArg_ParseTuple(args, "O", &future))
        return kwds ? (PyErr_SetString(PyExc_TypeError, "no keywords"), NULL) : NULL;
    if (!p->defer) Py_RETURN_NONE;
    if (!(p->result = PyObject_CallMethodNoArgs(future, tb_s_result))) p->error = tb_take_exception();
    turbo_defer *d = p->defer;
    p->defer = NULL;
    Py_INCREF(p); /* carried by turbo to tb_resume */
    tb_loop_resume(d, tb_resume, p);
    Py_RETURN_NONE;
}

static void tb_pending_dealloc(PyObject *self) {
    tb_Pending *p = (tb_Pending *)self;
    Py_XDECREF(p->result);
    Py_XDECREF(p->error);
    Py_XDECREF(p->request);
    PyObject_Free(self);
}

static void tb_close_coroutine(PyObject *coro) {
    PyObject *closed = PyObject_CallMethod(coro, "close", NULL);
    Py_XDECREF(closed);
    PyErr_Clear();
}

static int tb_loop_needed(void);

/* Hands coro, a route's (answer 0) or an exception handler's answer
   (answer 1), to this process's asyncio loop and defers the answer.
   request (borrowed, or NULL): a route's for its exception handler, and
   the one told when the client goes (is_disconnected). */
static void tb_await(turbo_res *res, tb_plan *pl, PyObject *coro, PyObject *request, int answer) {
    if (answer) tb_loop_needed(); /* refused below if it did not start */
    tb_Pending *p = tb_loop_submit ? (tb_Pending *)tb_PendingType.tp_alloc(&tb_PendingType, 0) : NULL;
    if (p) { /* the rest is zeroed */
        p->plan = pl;
        p->answer = answer;
    }
    if (!p || !(p->defer = turbo_res_defer(res))) {
        Py_XDECREF(p);
        tb_close_coroutine(coro);
        if (tb_loop_submit) PyErr_NoMemory();
        else if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "the handler returned a coroutine but this process "
                                                "runs no asyncio loop: declare it with async def");
        if (answer) {
            tb_log_route_exception(pl, NULL);
            tb_send_500(res);
        } else {
            tb_answer_exception(res, pl, NULL, request);
        }
        return;
    }
    turbo_defer *d = p->defer;
    if (request && !answer) {
        p->request = Py_NewRef(request);
        tb_request_watch((tb_Request *)request, d);
    }
    PyObject *future = PyObject_CallOneArg(tb_loop_submit, coro);
    PyObject *added =
        future ? PyObject_CallMethodOneArg(future, tb_s_add_done_callback, (PyObject *)p) : NULL;
    if (!added) {
        p->error = tb_take_exception();
        if (!future) tb_close_coroutine(coro);
        if (p->defer) { /* else the callback has already run */
            p->defer = NULL;
            Py_INCREF(p);
            turbo_defer_resume(d, tb_resume, p);
        }
    }
    Py_XDECREF(added);
    Py_XDECREF(future);
    Py_DECREF(p);
}

static void tb_loop_stop(void);
static int tb_asgi_jobs_open(PyObject *loop);
static void tb_asgi_jobs_close(void);

static int tb_loop_up; /* tb_loop_start has set every global of the loop (read with the GIL) */

/* GIL held. Starts this process's asyncio loop (turbo._support.Loop). */
static int tb_loop_start(void) {
    if (!(tb_loop_obj = PyObject_CallNoArgs(tb_Loop))) return -1;
    PyObject *loop = PyObject_GetAttrString(tb_loop_obj, "loop");
    tb_loop_create_future = loop ? PyObject_GetAttrString(loop, "create_future") : NULL;
    tb_loop_create_task = loop ? PyObject_GetAttrString(loop, "create_task") : NULL;
    tb_loop_call_soon_threadsafe = loop ? PyObject_GetAttrString(loop, "call_soon_threadsafe") : NULL;
    tb_loop_call_soon = loop ? PyObject_GetAttrString(loop, "call_soon") : NULL;
    tb_loop_flush_fn = PyCFunction_New(&tb_loop_flush_def, NULL);
    int rc = tb_loop_create_future && tb_loop_create_task && tb_loop_call_soon_threadsafe &&
                     tb_loop_call_soon && tb_loop_flush_fn &&
                     (tb_loop_submit = PyObject_GetAttrString(tb_loop_obj, "submit"))
                 ? 0
                 : -1;
    if (rc == 0 && loop) rc = tb_asgi_jobs_open(loop);
    Py_XDECREF(loop);
    if (rc < 0) tb_loop_stop();
    tb_loop_up = rc == 0;
    return rc;
}

static pthread_mutex_t tb_loop_starting = PTHREAD_MUTEX_INITIALIZER;

/* GIL held. The loop of a process that has no async route, started when
   first needed (an async exception handler, a streamed answer) by one
   thread, however many need it at once: starting it lets the GIL go, so
   another may come meanwhile, and waits here without the GIL. 0, or -1. */
static int tb_loop_needed(void) {
    int rc = 0;
    if (tb_loop_up) return 0;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&tb_loop_starting);
    Py_END_ALLOW_THREADS
    if (!tb_loop_up) rc = tb_loop_start();
    pthread_mutex_unlock(&tb_loop_starting);
    return rc;
}

/* GIL held. Stops it; the tasks still pending are cancelled. */
static void tb_loop_stop(void) {
    tb_loop_up = 0;
    if (!tb_loop_obj) return;
    tb_done_with(PyObject_CallMethod(tb_loop_obj, "stop", NULL), "stopping the asyncio loop");
    Py_CLEAR(tb_loop_submit);
    Py_CLEAR(tb_loop_create_future);
    Py_CLEAR(tb_loop_create_task);
    Py_CLEAR(tb_loop_call_soon_threadsafe);
    Py_CLEAR(tb_loop_call_soon);
    Py_CLEAR(tb_loop_flush_fn);
    tb_loop_answers.known = 0;
    Py_XDECREF(tb_loop_flush(NULL, NULL)); /* what the stopped loop did not flush */
    tb_asgi_jobs_close();
    Py_CLEAR(tb_loop_obj);
}

/* ================================================================ hosted ASGI and WSGI apps */

/* An existing app mounted at a prefix (app.mount, python3 -m turbo): it gets
   every request that turbo's own routes do not take, through a "*" route. */
typedef struct {
    PyObject *app;
    PyObject *root_path; /* str: the prefix, as ASGI's root_path and WSGI's SCRIPT_NAME */
    size_t prefix_len;   /* bytes of the path the prefix takes */
    PyObject *state;     /* ASGI: the lifespan state, copied into each scope */
    char *label;         /* "ASGI app at /api", for logs */
} tb_mount;

static PyObject *tb_server_addr; /* (host, port) of the listener, for scopes and environs */

/* An answer built without the GIL's help later: turbo writes it from any thread. */
typedef struct {
    int status;
    turbo_buf headers; /* "name: value\r\n" lines, checked */
    turbo_buf body;
    long long length; /* the app's Content-Length, for HEAD; -1 if none */
    long long sent;   /* WSGI: the body bytes handed to turbo before body */
    int cut;          /* WSGI: the app's body went past its length (said once) */
    int body_only;    /* more of a streamed body: the head went out before */
    char *file;       /* http.response.pathsend's path: the body is that file */
} tb_reply;

static void tb_reply_free(tb_reply *a) {
    turbo_buf_free(&a->headers);
    turbo_buf_free(&a->body);
    free(a->file);
    free(a);
}

static void tb_reply_put_headers(turbo_res *res, const tb_reply *a) {
    const char *p = a->headers.data, *end = p + a->headers.len;
    while (p < end) {
        const char *colon = memchr(p, ':', (size_t)(end - p)), *eol = memchr(p, '\r', (size_t)(end - p));
        turbo_res_headern(res, p, (size_t)(colon - p), colon + 2, (size_t)(eol - colon - 2));
        p = eol + 2;
    }
}

/* Writes a's status, headers and body into res. */
static void tb_reply_put(turbo_res *res, tb_reply *a) {
    if (a->body_only) {
        turbo_res_body(res, a->body.data, a->body.len);
        return;
    }
    turbo_res_status(res, a->status);
    tb_reply_put_headers(res, a);
    if (a->file) turbo_res_body_file(res, a->file);
    else turbo_res_body(res, a->body.data, a->body.len);
    if (a->length >= 0) turbo_res_head_length(res, (uint64_t)a->length);
}

/* Writes a (and frees it), or a 500 if a is NULL; res NULL: the client has gone. */
static void tb_reply_write(turbo_res *res, void *arg) {
    tb_reply *a = (tb_reply *)arg;
    if (res && a) tb_reply_put(res, a);
    else if (res) tb_send_500(res);
    if (a) tb_reply_free(a);
}

static tb_reply *tb_reply_new(void) {
    tb_reply *a = (tb_reply *)calloc(1, sizeof *a);
    if (a) a->length = -1;
    return a;
}

/* bytes, or str as Latin-1 (WSGI's way): 0 with *p, *n set, or -1 with an exception. */
static int tb_header_bytes(PyObject *o, const char **p, Py_ssize_t *n) {
    if (PyBytes_Check(o)) {
        *p = PyBytes_AS_STRING(o);
        *n = PyBytes_GET_SIZE(o);
        return 0;
    }
    if (PyUnicode_Check(o) && PyUnicode_READY(o) == 0 && PyUnicode_KIND(o) == PyUnicode_1BYTE_KIND) {
        *p = (const char *)PyUnicode_1BYTE_DATA(o); /* code points below 256: the Latin-1 bytes */
        *n = PyUnicode_GET_LENGTH(o);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "a response header must be bytes (ASGI) or a Latin-1 str (WSGI), not %R", o);
    return -1;
}

/* Adds the (name, value) pairs of headers to a. The headers turbo writes
   itself (Content-Length, Date, Server, Connection, Transfer-Encoding) are
   left out: turbo computes them. 0, or -1 with an exception. */
static int tb_reply_headers(tb_reply *a, PyObject *headers) {
    PyObject *it = PyObject_GetIter(headers), *pair;
    int rc = 0; /* the last pair's; 0 (added) and TURBO_HEADER_OWNED (left to turbo) go on */
    if (!it) return -1;
    while ((rc == 0 || rc == TURBO_HEADER_OWNED) && (pair = PyIter_Next(it)) != NULL) {
        PyObject *seq = PySequence_Fast(pair, "a response header must be a (name, value) pair");
        const char *n = NULL, *v = NULL;
        Py_ssize_t nn = 0, vn = 0;
        rc = !seq                                 ? -1
             : PySequence_Fast_GET_SIZE(seq) != 2 ? -2
             : tb_header_bytes(PySequence_Fast_GET_ITEM(seq, 0), &n, &nn) < 0 ||
                     tb_header_bytes(PySequence_Fast_GET_ITEM(seq, 1), &v, &vn) < 0
                 ? -1
                 : turbo_header_check(n, (size_t)nn, v, (size_t)vn);
        if (rc == -2) PyErr_SetString(PyExc_ValueError, "a response header must be a (name, value) pair");
        if (rc == TURBO_HEADER_BAD_NAME || rc == TURBO_HEADER_BAD_VALUE)
            PyErr_Format(PyExc_ValueError, "response header %R is not valid HTTP", pair);
        if (rc == TURBO_HEADER_OWNED && nn == 14 && strncasecmp(n, "content-length", 14) == 0) {
            char digits[24];
            size_t k = (size_t)vn < sizeof digits - 1 ? (size_t)vn : sizeof digits - 1;
            memcpy(digits, v, k);
            digits[k] = '\0';
            a->length = strtoll(digits, NULL, 10);
        }
        if (rc == 0) {
            turbo_buf_append(&a->headers, n, (size_t)nn);
            turbo_buf_append(&a->headers, ": ", 2);
            turbo_buf_append(&a->headers, v, (size_t)vn);
            turbo_buf_append(&a->headers, "\r\n", 2);
        }
        Py_XDECREF(seq);
        Py_DECREF(pair);
    }
    Py_DECREF(it);
    return (rc == 0 || rc == TURBO_HEADER_OWNED) && !PyErr_Occurred() ? 0 : -1;
}

/* Appends a bytes-like body part. */
static int tb_reply_body(tb_reply *a, PyObject *part) {
    Py_buffer view;
    if (PyObject_GetBuffer(part, &view, PyBUF_SIMPLE) < 0) return -1;
    turbo_buf_append(&a->body, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return a->body.oom ? (PyErr_NoMemory(), -1) : 0;
}

/* ---- ASGI 3.0: http scope, receive, send; the app runs on the asyncio loop */

/* An awaitable whose value is ready: what receive() and send() return. */
typedef struct {
    PyObject_HEAD
    PyObject *value;
} tb_Ready;

static PyObject *tb_ready_new(PyObject *value) { /* steals value */
    tb_Ready *r = value ? PyObject_New(tb_Ready, &tb_ReadyType) : NULL;
    if (!r) {
        Py_XDECREF(value);
        return NULL;
    }
    r->value = value;
    return (PyObject *)r;
}

static PyObject *tb_ready_await(PyObject *self) { return Py_NewRef(self); }

static PyObject *tb_ready_next(PyObject *self) {
    tb_Ready *r = (tb_Ready *)self;
    PyObject *stop = r->value ? PyObject_CallOneArg(PyExc_StopIteration, r->value) : NULL;
    if (stop) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    Py_CLEAR(r->value);
    return NULL;
}

static void tb_ready_dealloc(PyObject *self) {
    Py_XDECREF(((tb_Ready *)self)->value);
    PyObject_Free(self);
}

static PyAsyncMethods tb_ready_async = {tb_ready_await, NULL, NULL, NULL};

/* What turbo and the loop's side share of one ASGI request, so that
   turbo can say the connection went before the answer: turbo keeps a
   reference while it watches a deferred answer (tb_asgi_ended), the loop's
   side one (the job, then the call), and the last to let go frees it. */
typedef struct {
    int refs;
    struct tb_ASGICall *call; /* on the loop's thread only */
} tb_asgi_link;

static void tb_asgi_link_drop(tb_asgi_link *link) {
    if (link && __atomic_sub_fetch(&link->refs, 1, __ATOMIC_ACQ_REL) == 0) free(link);
}

/* One request to an ASGI app: receive() and send() are its methods, and
   it is the done-callback of the app's future. Once a part has gone out
   before the end (more_body), reply->body_only is set. */
typedef struct tb_ASGICall {
    PyObject_HEAD
    tb_asgi_link *link;
    turbo_defer *defer;   /* NULL once answered */
    const char *label;    /* the app's or the route's, for logs */
    tb_reply *reply;      /* filled by send(), handed to turbo when complete */
    PyObject *body;       /* the request body, until the first receive() */
    PyObject *disconnect; /* a future that receive() waits on after the body */
    PyObject *waiter;     /* while a part is with turbo (defer comes back with it): send()'s */
    int started;          /* http.response.start came */
    int app_done;         /* the app's task has ended */
    int gone;             /* the client has gone: later parts are dropped */
} tb_ASGICall;

static void tb_asgi_ended(void *arg, int gone);

/* turbo tells the link when the connection of this deferred answer goes. */
static void tb_asgi_watch(turbo_defer *d, tb_asgi_link *link) {
    __atomic_add_fetch(&link->refs, 1, __ATOMIC_RELAXED);
    turbo_defer_watch(d, tb_asgi_ended, link);
}

/* {"type": type}: a new reference, or NULL with an exception. */
static PyObject *tb_asgi_message(PyObject *type) {
    PyObject *m = PyDict_New();
    if (m && tb_put(m, tb_s_type, Py_NewRef(type)) < 0) Py_CLEAR(m);
    return m;
}

static PyObject *tb_asgi_receive(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    tb_ASGICall *c = (tb_ASGICall *)self;
    if (c->body) {
        PyObject *m = tb_asgi_message(tb_s_http_request);
        if (m && (tb_put(m, tb_s_body, Py_NewRef(c->body)) < 0 ||
                  tb_put(m, tb_s_more_body, Py_NewRef(Py_False)) < 0))
            Py_CLEAR(m);
        Py_CLEAR(c->body);
        return tb_ready_new(m);
    }
    if (c->gone || (!c->defer && !c->waiter)) return tb_ready_new(tb_asgi_message(tb_s_http_disconnect));
    if (!c->disconnect && !(c->disconnect = PyObject_CallNoArgs(tb_loop_create_future))) return NULL;
    /* Each call its own wait on it: a receive() cancelled (a timeout, as in
       is_disconnected()) cancels its shield, not the disconnect the next
       receive() waits for. */
    return PyObject_CallOneArg(tb_shield, c->disconnect);
}

static void tb_asgi_abort(turbo_res *res, void *Py_UNUSED(arg)) {
    if (res) turbo_res_abort(res);
}

/* receive() now reports the end, to an app waiting on it too (from a
   turbo thread as well: through call_soon_threadsafe). */
static void tb_asgi_disconnected(tb_ASGICall *c) {
    if (c->disconnect) {
        PyObject *m = tb_asgi_message(tb_s_http_disconnect);
        PyObject *r = m && tb_loop_call_soon_threadsafe
                          ? PyObject_CallFunctionObjArgs(tb_loop_call_soon_threadsafe, tb_resolve,
                                                         c->disconnect, m, NULL)
                          : NULL;
        if (!r) PyErr_Clear();
        Py_XDECREF(r);
        Py_XDECREF(m);
    }
}

/* The answer ends, and receive() reports it: turbo writes a (the call's
   reply; NULL: a 500) with tb_reply_write, or cuts the connection with
   tb_asgi_abort (the client sees the end missing). */
static void tb_asgi_finish(tb_ASGICall *c, void (*write)(turbo_res *res, void *arg), tb_reply *a) {
    turbo_defer *d = c->defer;
    c->defer = NULL;
    if (a == c->reply) c->reply = NULL;
    tb_loop_resume(d, write, a);
    tb_asgi_disconnected(c);
}

/* On the loop's thread: the connection went before the answer was
   complete. Sends are dropped from now on, as uvicorn does; a part still
   with turbo comes back without a response and lets its send() go. */
static void tb_asgi_gone(tb_ASGICall *c) {
    c->gone = 1;
    if (c->defer && !c->waiter) tb_asgi_finish(c, tb_asgi_abort, NULL);
    else tb_asgi_disconnected(c);
}

static PyObject *tb_hosted_fail(const char *label, const char *what) {
    return PyErr_Format(PyExc_RuntimeError, "%s: %s", label, what);
}

/* An ASGI message's msg[key] (key interned): a new reference, or NULL
   without an exception when it is missing or None. */
static PyObject *tb_item(PyObject *msg, PyObject *key) {
    PyObject *v =
        PyDict_CheckExact(msg) ? Py_XNewRef(PyDict_GetItemWithError(msg, key)) : PyObject_GetItem(msg, key);
    if (!v) PyErr_Clear(); /* a mapping's own error on a lookup counts as missing, as PyMapping_HasKey's */
    if (v == Py_None) Py_CLEAR(v);
    return v;
}

/* msg["type"] as UTF-8 (msg keeps it alive), or NULL without an exception. */
static const char *tb_message_type(PyObject *msg) {
    PyObject *type = tb_item(msg, tb_s_type);
    const char *t = type && PyUnicode_Check(type) ? PyUnicode_AsUTF8(type) : NULL;
    Py_XDECREF(type);
    PyErr_Clear();
    return t;
}

static int tb_asgi_start(tb_ASGICall *c, PyObject *msg) {
    PyObject *status = tb_item(msg, tb_s_status);
    long code = status && PyLong_Check(status) ? PyLong_AsLong(status) : -1;
    Py_XDECREF(status);
    if (!tb_check_status(code)) return -1;
    c->reply->status = (int)code;
    PyObject *headers = tb_item(msg, tb_s_headers);
    int rc = headers ? tb_reply_headers(c->reply, headers) : 0;
    Py_XDECREF(headers);
    c->started = 1;
    return rc;
}

/* On a turbo thread: one part of a streamed body goes out (the head first),
   then the answer is deferred again for the next; the app's send() is let
   go once the client has taken it. */
static void tb_asgi_part(turbo_res *res, void *arg) {
    tb_ASGICall *c = (tb_ASGICall *)arg;
    tb_reply *part = c->reply;
    turbo_defer *next = NULL;
    if (res) {
        tb_reply_put(res, part);
        if (turbo_res_flush(res) == 0 && (next = turbo_res_defer(res)) != NULL) tb_asgi_watch(next, c->link);
    }
    int held = !res && PyGILState_Check(); /* called at once after shutdown, as tb_resume */
    if (!held && tb_gil_take(NULL) < 0) return;
    /* All of the call's state first: calling into Python below may let the
       app run, and send its next part, before this returns. */
    PyObject *waiter = c->waiter;
    c->waiter = NULL;
    part->body.len = 0;
    part->body_only = 1;
    c->defer = next;
    c->gone = !next;
    if (next && c->app_done) { /* the app ended without its last part */
        c->defer = NULL;
        turbo_defer_resume(next, tb_asgi_abort, NULL);
    }
    PyObject *r =
        waiter ? PyObject_CallFunctionObjArgs(tb_loop_call_soon_threadsafe, tb_resolve, waiter, NULL) : NULL;
    if (!r) PyErr_Clear();
    if (c->gone) tb_asgi_disconnected(c);
    Py_XDECREF(r);
    Py_XDECREF(waiter);
    Py_DECREF(c);
    if (!held) tb_gil_drop();
}

/* send() with more_body: the part goes to turbo now, and send() returns a
   future done once the client has it (backpressure). */
static PyObject *tb_asgi_stream(tb_ASGICall *c) {
    turbo_defer *d = c->defer;
    if (!(c->waiter = PyObject_CallNoArgs(tb_loop_create_future))) return NULL;
    c->defer = NULL;
    Py_INCREF(c); /* carried by turbo to tb_asgi_part */
    PyObject *waiter = Py_NewRef(c->waiter);
    tb_loop_resume(d, tb_asgi_part, c);
    return waiter;
}

static PyObject *tb_asgi_send(PyObject *self, PyObject *msg) {
    tb_ASGICall *c = (tb_ASGICall *)self;
    const char *t = tb_message_type(msg);
    if (!t) return tb_hosted_fail(c->label, "sent a message without a str 'type'");
    /* As uvicorn: after a disconnect, sends are dropped. */
    if (c->gone) return tb_ready_new(Py_NewRef(Py_None));
    if (c->waiter) return tb_hosted_fail(c->label, "sent a message before the last send() was awaited");
    if (!c->defer || !c->reply)
        return tb_hosted_fail(c->label, "sent a message after the response was complete");
    if (strcmp(t, "http.response.start") == 0) {
        if (c->started) return tb_hosted_fail(c->label, "sent http.response.start twice");
        if (tb_asgi_start(c, msg) < 0) return NULL;
    } else if (strcmp(t, "http.response.body") == 0) {
        if (!c->started)
            return tb_hosted_fail(c->label, "sent http.response.body before http.response.start");
        PyObject *body = tb_item(msg, tb_s_body), *more = tb_item(msg, tb_s_more_body);
        int rc = body ? tb_reply_body(c->reply, body) : 0, more_body = more ? PyObject_IsTrue(more) : 0;
        Py_XDECREF(body);
        Py_XDECREF(more);
        if (rc < 0 || more_body < 0) return NULL;
        if (more_body && c->reply->body.len) return tb_asgi_stream(c);
        if (!more_body) tb_asgi_finish(c, tb_reply_write, c->reply);
    } else if (strcmp(t, "http.response.pathsend") == 0) {
        if (!c->started)
            return tb_hosted_fail(c->label, "sent http.response.pathsend before http.response.start");
        if (c->reply->body_only) /* the file would have to go out in chunks: not what pathsend is for */
            return tb_hosted_fail(c->label, "sent http.response.pathsend after body parts");
        PyObject *path = tb_item(msg, tb_s_path), *bytes = NULL;
        if (path && PyUnicode_Check(path) && (bytes = PyUnicode_EncodeFSDefault(path)) &&
            !(c->reply->file = strdup(PyBytes_AS_STRING(bytes))))
            PyErr_NoMemory();
        Py_XDECREF(path);
        Py_XDECREF(bytes);
        if (!c->reply->file)
            return PyErr_Occurred() ? NULL : tb_hosted_fail(c->label, "pathsend without a str 'path'");
        tb_asgi_finish(c, tb_reply_write, c->reply);
    } else {
        return PyErr_Format(PyExc_RuntimeError, "%s: sent a message of unknown type '%s'", c->label, t);
    }
    return tb_ready_new(Py_NewRef(Py_None));
}

/* The app's future is done: an app that failed or answered nothing gets a 500. */
static PyObject *tb_asgi_done(PyObject *self, PyObject *args, PyObject *kwds) {
    tb_ASGICall *c = (tb_ASGICall *)self;
    PyObject *future, *result;
    if (kwds || !PyArg_ParseTuple(args, "O", &future)) return NULL;
    if (!(result = PyObject_CallMethodNoArgs(future, tb_s_result))) tb_log_exception(c->label, NULL);
    else if (c->defer) PySys_FormatStderr("turbo: %s: returned without a complete response\n", c->label);
    Py_XDECREF(result);
    c->app_done = 1;
    /* A 500, unless part of the answer has gone out: then it is too late. */
    if (c->defer) tb_asgi_finish(c, c->reply->body_only ? tb_asgi_abort : tb_reply_write, NULL);
    Py_RETURN_NONE;
}

static void tb_asgi_call_dealloc(PyObject *self) {
    tb_ASGICall *c = (tb_ASGICall *)self;
    c->link->call = NULL;
    tb_asgi_link_drop(c->link);
    if (c->reply) tb_reply_free(c->reply);
    Py_XDECREF(c->body);
    Py_XDECREF(c->disconnect);
    Py_XDECREF(c->waiter);
    PyObject_Free(self);
}

static PyMethodDef tb_asgi_receive_def = {"receive", tb_asgi_receive, METH_NOARGS, NULL};
static PyMethodDef tb_asgi_send_def = {"send", tb_asgi_send, METH_O, NULL};

/* What a turbo thread hands the asyncio loop, without the GIL. */
enum {
    TB_JOB_REQUEST,   /* an ASGI request */
    TB_JOB_WEBSOCKET, /* an ASGI app's WebSocket handshake (accept is its key) */
    TB_JOB_GONE,      /* word that link's connection has gone */
    TB_JOB_WS_OPEN,   /* the events of a WebSocket (ws, code, data) */
    TB_JOB_WS_TEXT,
    TB_JOB_WS_BINARY,
    TB_JOB_WS_DRAIN,
    TB_JOB_WS_CLOSE
};

/* One ASGI request as a turbo thread hands it to the asyncio loop: a copy
   of what the scope needs (the turbo_req is gone once the handler
   returns). data holds the method, the raw path, the query, then each
   header as name NUL value NUL (the parser refuses NUL), then the body (a
   WebSocket message: the message). */
typedef struct tb_asgi_job {
    struct tb_asgi_job *next;
    int kind; /* TB_JOB_* */
    tb_mount *mount;
    turbo_defer *defer;
    tb_asgi_link *link;
    struct tb_WebSocket *ws;
    turbo_ws *socket; /* TB_JOB_WS_OPEN's */
    int code;         /* TB_JOB_WS_CLOSE's */
    int version, port, https, nheaders;
    size_t method_len, path_len, query_len, headers_len, body_len;
    char host[48];
    char accept[29];
    char data[];
} tb_asgi_job;

/* Jobs waiting for the asyncio loop: the first one of a batch writes a byte
   to wake_fd, which the loop watches (add_reader); it takes them all. */
static struct {
    pthread_mutex_t lock;
    tb_asgi_job *head, **tail;
    int wake_fd[2];
} tb_asgi_jobs = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, {-1, -1}};

static tb_asgi_job *tb_asgi_job_new(tb_mount *m, turbo_req *req) {
    turbo_str method = turbo_req_method(req), path = turbo_req_path(req), query = turbo_req_query(req);
    turbo_str body = turbo_req_body(req);
    int n = turbo_req_header_count(req);
    size_t headers_len = 0;
    for (int i = 0; i < n; i++)
        headers_len += turbo_req_header_name(req, i).len + turbo_req_header_value(req, i).len + 2;
    tb_asgi_job *job =
        (tb_asgi_job *)malloc(sizeof *job + method.len + path.len + query.len + headers_len + body.len);
    if (!job) return NULL;
    *job = (tb_asgi_job){.kind = TB_JOB_REQUEST,
                         .mount = m,
                         .version = turbo_req_version(req),
                         .nheaders = n,
                         .method_len = method.len,
                         .path_len = path.len,
                         .query_len = query.len,
                         .headers_len = headers_len,
                         .body_len = body.len};
    job->port = tb_peer(req, job->host, sizeof job->host, &job->https, 1);
    char *o = job->data;
    memcpy(o, method.ptr, method.len);
    o += method.len;
    memcpy(o, path.ptr, path.len);
    o += path.len;
    if (query.len) memcpy(o, query.ptr, query.len);
    o += query.len;
    for (int i = 0; i < n; i++) {
        turbo_str name = turbo_req_header_name(req, i), value = turbo_req_header_value(req, i);
        for (size_t k = 0; k < name.len; k++) /* ASGI's names are in lower case */
            *o++ = (char)Py_TOLOWER(name.ptr[k]);
        *o++ = '\0';
        if (value.len) memcpy(o, value.ptr, value.len);
        o += value.len;
        *o++ = '\0';
    }
    if (body.len) memcpy(o, body.ptr, body.len);
    return job;
}

static PyObject *tb_asgi_headers(const tb_asgi_job *job) {
    const char *p = job->data + job->method_len + job->path_len + job->query_len;
    PyObject *list = PyList_New(job->nheaders);
    for (int i = 0; list && i < job->nheaders; i++) {
        size_t nlen = strlen(p), vlen = strlen(p + nlen + 1);
        PyObject *pair = tb_pair(PyBytes_FromStringAndSize(p, (Py_ssize_t)nlen),
                                 PyBytes_FromStringAndSize(p + nlen + 1, (Py_ssize_t)vlen));
        if (!pair) Py_CLEAR(list);
        else PyList_SET_ITEM(list, i, pair);
        p += nlen + vlen + 2;
    }
    return list;
}

static PyObject *tb_asgi_scope(const tb_asgi_job *job) {
    tb_mount *m = job->mount;
    const char *method = job->data, *raw = method + job->method_len, *query = raw + job->path_len;
    size_t prefix = m->prefix_len, rest = job->path_len - prefix;
    PyObject *scope = PyDict_New(), *asgi = PyDict_New(), *extensions = PyDict_New();
    if (!scope || !asgi || !extensions || tb_put(asgi, tb_s_version, Py_NewRef(tb_s_asgi_3_0)) < 0 ||
        tb_put(asgi, tb_s_spec_version, Py_NewRef(tb_s_spec_2_3)) < 0 ||
        tb_put(extensions, tb_s_pathsend, PyDict_New()) < 0 ||
        tb_put(scope, tb_s_type, Py_NewRef(tb_s_http)) < 0 || tb_put(scope, tb_s_asgi, Py_NewRef(asgi)) < 0 ||
        tb_put(scope, tb_s_http_version, Py_NewRef(job->version == 10 ? tb_s_http_1_0 : tb_s_http_1_1)) < 0 ||
        tb_put(scope, tb_s_method, PyUnicode_FromStringAndSize(method, (Py_ssize_t)job->method_len)) < 0 ||
        tb_put(scope, tb_s_scheme, Py_NewRef(job->https ? tb_s_https : tb_s_http)) < 0 ||
        tb_put(scope, tb_s_path, rest ? tb_decoded_str(raw + prefix, rest, 0) : Py_NewRef(tb_s_slash)) < 0 ||
        tb_put(scope, tb_s_raw_path, PyBytes_FromStringAndSize(raw, (Py_ssize_t)job->path_len)) < 0 ||
        tb_put(scope, tb_s_query_string, PyBytes_FromStringAndSize(query, (Py_ssize_t)job->query_len)) < 0 ||
        tb_put(scope, tb_s_root_path, Py_NewRef(m->root_path)) < 0 ||
        tb_put(scope, tb_s_headers, tb_asgi_headers(job)) < 0 ||
        tb_put(scope, tb_s_client,
               job->port < 0 ? Py_NewRef(Py_None)
                             : tb_pair(PyUnicode_FromString(job->host), PyLong_FromLong(job->port))) < 0 ||
        tb_put(scope, tb_s_server, Py_NewRef(tb_server_addr ? tb_server_addr : Py_None)) < 0 ||
        tb_put(scope, tb_s_state, PyDict_Copy(m->state)) < 0 ||
        tb_put(scope, tb_s_extensions, Py_NewRef(extensions)) < 0)
        Py_CLEAR(scope);
    Py_XDECREF(asgi);
    Py_XDECREF(extensions);
    return scope;
}

/* Runs app(scope, receive, send) to answer d, its task made by start
   (loop.create_task on the loop's thread, Loop.submit from another). The
   call takes over link's reference. scope or body NULL: d gets a 500. */
static void tb_asgi_run(const char *label, tb_asgi_link *link, turbo_defer *d, PyObject *app, PyObject *scope,
                        PyObject *body, PyObject *start) {
    tb_ASGICall *c = scope && body ? (tb_ASGICall *)tb_ASGICallType.tp_alloc(&tb_ASGICallType, 0) : NULL;
    PyObject *receive = NULL, *send = NULL, *coro = NULL, *task = NULL, *added = NULL;
    if (!c) {
        tb_log_error_line(label);
        turbo_defer_resume(d, tb_reply_write, NULL); /* a 500 */
        tb_asgi_link_drop(link);
        return;
    }
    c->link = link;
    link->call = c;
    c->defer = d;
    c->label = label;
    c->reply = tb_reply_new();
    c->body = Py_NewRef(body); /* the other fields are zero (tp_alloc) */
    if (c->reply && (receive = PyCFunction_New(&tb_asgi_receive_def, (PyObject *)c)) &&
        (send = PyCFunction_New(&tb_asgi_send_def, (PyObject *)c)) &&
        (coro = PyObject_CallFunctionObjArgs(app, scope, receive, send, NULL)) &&
        (task = PyObject_CallOneArg(start, coro)))
        added = PyObject_CallMethodOneArg(task, tb_s_add_done_callback, (PyObject *)c);
    if (!added) { /* the app never runs: answer now */
        tb_log_error_line(label);
        if (!task && coro) tb_close_coroutine(coro);
        if (c->defer) tb_asgi_finish(c, tb_reply_write, NULL);
    }
    Py_XDECREF(added);
    Py_XDECREF(task);
    Py_XDECREF(coro);
    Py_XDECREF(send);
    Py_XDECREF(receive);
    Py_DECREF(c);
}

/* On the asyncio loop's thread: the job becomes a task running the app. */
static void tb_asgi_start_job(tb_asgi_job *job) {
    const char *body = job->data + job->method_len + job->path_len + job->query_len + job->headers_len;
    PyObject *scope = tb_asgi_scope(job), *bytes = PyBytes_FromStringAndSize(body, (Py_ssize_t)job->body_len);
    tb_asgi_run(job->mount->label, job->link, job->defer, job->mount->app, scope, bytes, tb_loop_create_task);
    Py_XDECREF(bytes);
    Py_XDECREF(scope);
}

static tb_asgi_job *tb_asgi_take_jobs(void) {
    pthread_mutex_lock(&tb_asgi_jobs.lock);
    tb_asgi_job *jobs = tb_asgi_jobs.head;
    tb_asgi_jobs.head = NULL;
    tb_asgi_jobs.tail = &tb_asgi_jobs.head;
    pthread_mutex_unlock(&tb_asgi_jobs.lock);
    return jobs;
}

static void tb_ws_start_hosted(tb_asgi_job *job);
static void tb_ws_event(tb_asgi_job *job);

/* The loop's reader of wake_fd: every job waiting becomes a task, calls
   whose connection went hear of it, WebSockets of their events. */
static PyObject *tb_asgi_drain(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored)) {
    char bytes[64];
    while (read(tb_asgi_jobs.wake_fd[0], bytes, sizeof bytes) == (ssize_t)sizeof bytes) {
        /* a short read emptied the pipe */
    }
    for (tb_asgi_job *job = tb_asgi_take_jobs(), *next; job; job = next) {
        next = job->next;
        if (job->kind == TB_JOB_REQUEST) {
            tb_asgi_start_job(job);
        } else if (job->kind == TB_JOB_WEBSOCKET) {
            tb_ws_start_hosted(job);
        } else if (job->kind == TB_JOB_GONE) {
            if (job->link->call) tb_asgi_gone(job->link->call);
            tb_asgi_link_drop(job->link);
        } else {
            tb_ws_event(job);
        }
        free(job);
    }
    Py_RETURN_NONE;
}

static PyMethodDef tb_asgi_drain_def = {"drain", tb_asgi_drain, METH_NOARGS, NULL};

/* The loop's first callback: it knows its thread, and watches the pipe. */
static PyObject *tb_asgi_attach(PyObject *add_reader, PyObject *Py_UNUSED(ignored)) {
    tb_loop_answers.thread = pthread_self();
    tb_loop_answers.known = 1;
    PyObject *drain = PyCFunction_New(&tb_asgi_drain_def, NULL);
    PyObject *r = drain ? PyObject_CallFunction(add_reader, "iO", tb_asgi_jobs.wake_fd[0], drain) : NULL;
    Py_XDECREF(drain);
    return r;
}

static PyMethodDef tb_asgi_attach_def = {"attach", tb_asgi_attach, METH_NOARGS, NULL};

/* GIL held, at loop start: the pipe, watched by the loop. */
static int tb_asgi_jobs_open(PyObject *loop) {
    if (pipe(tb_asgi_jobs.wake_fd) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(tb_asgi_jobs.wake_fd[i], F_SETFL, O_NONBLOCK);
        fcntl(tb_asgi_jobs.wake_fd[i], F_SETFD, FD_CLOEXEC);
    }
    tb_asgi_jobs.tail = &tb_asgi_jobs.head;
    PyObject *add = PyObject_GetAttrString(loop, "add_reader");
    PyObject *attach = add ? PyCFunction_New(&tb_asgi_attach_def, add) : NULL;
    PyObject *r = attach ? PyObject_CallOneArg(tb_loop_call_soon_threadsafe, attach) : NULL;
    Py_XDECREF(attach);
    Py_XDECREF(add);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* GIL held, once the loop has stopped: jobs it never started get no answer. */
static void tb_asgi_jobs_close(void) {
    pthread_mutex_lock(&tb_asgi_jobs.lock); /* from now on nothing is posted */
    for (int i = 0; i < 2; i++) {
        if (tb_asgi_jobs.wake_fd[i] >= 0) close(tb_asgi_jobs.wake_fd[i]);
        tb_asgi_jobs.wake_fd[i] = -1;
    }
    pthread_mutex_unlock(&tb_asgi_jobs.lock);
    for (tb_asgi_job *job = tb_asgi_take_jobs(), *next; job; job = next) {
        next = job->next;
        if (job->kind == TB_JOB_REQUEST || job->kind == TB_JOB_WEBSOCKET)
            turbo_defer_resume(job->defer, tb_reply_write, NULL); /* a 500 */
        else if (job->kind >= TB_JOB_WS_OPEN) tb_ws_event(job); /* a WebSocket's close lets it go */
        tb_asgi_link_drop(job->link);
        free(job);
    }
}

/* Queues a job (or a notice) for the loop; 0 once the loop has stopped. */
static int tb_asgi_post(tb_asgi_job *job) {
    pthread_mutex_lock(&tb_asgi_jobs.lock);
    int open = tb_asgi_jobs.wake_fd[1] >= 0, first = open && !tb_asgi_jobs.head;
    if (open) {
        *tb_asgi_jobs.tail = job;
        tb_asgi_jobs.tail = &job->next;
    }
    pthread_mutex_unlock(&tb_asgi_jobs.lock);
    if (first)
        while (write(tb_asgi_jobs.wake_fd[1], "j", 1) < 0 && errno == EINTR) {
        }
    return open;
}

/* turbo_defer_watch's callback, on a turbo thread: the loop's side is told
   when the connection went, by a notice behind the request's own job. */
static void tb_asgi_ended(void *arg, int gone) {
    tb_asgi_link *link = (tb_asgi_link *)arg;
    tb_asgi_job *notice = gone ? (tb_asgi_job *)calloc(1, sizeof *notice) : NULL;
    if (notice) {
        notice->kind = TB_JOB_GONE;
        notice->link = link;
    }
    if (!notice || !tb_asgi_post(notice)) {
        free(notice);
        tb_asgi_link_drop(link);
    }
}

static int tb_ws_refused(turbo_req *req, turbo_res *res, char accept[29]);

/* The turbo_handler of a mounted ASGI app. It takes no GIL: the request is
   copied to the asyncio loop, which runs the app, and the answer is
   deferred until send() completes it (a WebSocket's handshake, until the
   app accepts or closes). */
static void tb_asgi_handler(turbo_req *req, turbo_res *res, void *user) {
    tb_mount *m = (tb_mount *)user;
    turbo_str upgrade = turbo_req_header(req, "upgrade");
    char accept[29];
    int ws = upgrade.len && tb_contains_nocase(upgrade.ptr, upgrade.len, "websocket");
    if (ws && tb_ws_refused(req, res, accept)) return;
    tb_asgi_job *job = tb_asgi_job_new(m, req);
    tb_asgi_link *link = job ? (tb_asgi_link *)calloc(1, sizeof *link) : NULL;
    if (link && ws) {
        job->kind = TB_JOB_WEBSOCKET;
        memcpy(job->accept, accept, sizeof accept);
    }
    if (link && (job->defer = turbo_res_defer(res)) != NULL) {
        link->refs = 1; /* the job's */
        job->link = link;
        tb_asgi_watch(job->defer, link); /* first: once posted, the job is the loop's */
        if (tb_asgi_post(job)) return;
        fprintf(stderr, "turbo: %s: no asyncio loop runs\n", m->label);
        turbo_defer_resume(job->defer, tb_reply_write, NULL); /* a 500 */
        tb_asgi_link_drop(link);
        free(job);
        return;
    }
    fprintf(stderr, "turbo: %s: out of memory\n", m->label);
    tb_send_500(res);
    free(link);
    free(job);
}

/* A handler's result that is callable is an ASGI app giving the answer (a
   StreamingResponse, or a Starlette response): it runs on the loop as a
   mounted app does, so its body can stream. The scope has no request in
   it: the route has read that. */
static void tb_answer_asgi(turbo_res *res, tb_plan *pl, PyObject *app) {
    if (tb_loop_needed() < 0) {
        tb_answer_exception(res, pl, NULL, NULL);
        return;
    }
    tb_asgi_link *link = (tb_asgi_link *)calloc(1, sizeof *link);
    turbo_defer *d = link ? turbo_res_defer(res) : NULL;
    if (!d) {
        free(link);
        PyErr_NoMemory();
        tb_answer_exception(res, pl, NULL, NULL);
        return;
    }
    link->refs = 1;
    tb_asgi_watch(d, link);
    PyObject *scope =
        Py_BuildValue("{s:s,s:{s:s,s:s}}", "type", "http", "asgi", "version", "3.0", "spec_version", "2.3");
    PyObject *body = PyBytes_FromStringAndSize(NULL, 0);
    tb_asgi_run(pl->label, link, d, app, scope, body, tb_loop_submit);
    Py_XDECREF(body);
    Py_XDECREF(scope);
}

/* ---- WebSockets (turbo.h's turbo_ws). An @app.websocket endpoint gets a
   turbo.WebSocket (Starlette's methods), a hosted ASGI app its receive and
   send (the websocket scope); either runs on the asyncio loop, and the
   handshake's answer waits until it accepts (101) or closes (403). turbo's
   callbacks take no GIL: each queues an event behind the ASGI requests
   (tb_asgi_post), and the loop's thread gives them to the app in order,
   the close last. Messages wait in an inbox until received; past 1 MiB of
   them, on their way to the loop or in the inbox, turbo stops reading the
   socket (turbo_ws_pause, from turbo's thread: a loop that falls behind
   cannot let more pile up) until under 256 KiB of them are left: the
   client waits, nothing is lost. A send past turbo's 1 MiB waits for on_drain. */

enum { TB_WANT_MESSAGE, TB_WANT_TEXT, TB_WANT_BYTES, TB_WANT_JSON }; /* what a receive gives */

#define TB_WS_INBOX_HIGH (1u << 20) /* bytes on their way; characters of text, bytes in the inbox */
#define TB_WS_INBOX_LOW (256u << 10)

static PyObject *tb_WebSocketDisconnect, *tb_deque, *tb_websocket_scope; /* from turbo/_support.py */

typedef struct tb_WebSocket {
    tb_Request request;   /* the handshake, for an endpoint's path_params, headers... */
    turbo_defer *defer;   /* the handshake's answer, until accept() or close() */
    turbo_ws *ws;         /* while open (retained) */
    tb_reply *reply;      /* accept()'s headers, or the answer that refuses */
    char *subprotocol;    /* accept()'s */
    const char *label;    /* the route's or the app's, for logs */
    tb_plan *plan;        /* an endpoint's; NULL for a hosted app */
    PyObject *inbox;      /* a deque of the messages not received yet (str or bytes) */
    pthread_mutex_t flow; /* posted, waiting and paused: turbo's thread pauses, the loop's resumes */
    size_t posted;        /* bytes of the messages queued for the loop, not handled there yet */
    size_t waiting;       /* the lengths of those in the inbox, summed */
    PyObject *receiver;   /* the future a receive waits on */
    PyObject *sender;     /* the future accept() (the 101 is out) or a send (on_drain) waits on */
    int code;             /* the close's (turbo's on_close, or 1006): 0 until closed */
    int want, connected, ended, paused;
    char accept[29];
} tb_WebSocket;

/* On the loop's thread: messages handled (their bytes off posted), moved to
   the inbox or received from it; reading resumes once under
   TB_WS_INBOX_LOW of them are left, on their way or in the inbox. */
static void tb_ws_settle(tb_WebSocket *w, size_t handled, size_t queued, size_t received) {
    pthread_mutex_lock(&w->flow);
    w->posted -= handled;
    w->waiting = w->waiting + queued - received;
    if (w->paused && w->posted + w->waiting < TB_WS_INBOX_LOW && w->ws) turbo_ws_pause(w->ws, w->paused = 0);
    pthread_mutex_unlock(&w->flow);
}

/* On a turbo thread, without the GIL: queues an event of w for the loop. */
static void tb_ws_post(tb_WebSocket *w, int kind, turbo_ws *ws, int code, const char *data, size_t len) {
    tb_asgi_job *job = (tb_asgi_job *)malloc(sizeof *job + len);
    if (!job) {
        if (ws) turbo_ws_close(ws, 1011, "out of memory");
        return;
    }
    *job = (tb_asgi_job){.kind = kind, .ws = w, .socket = ws, .code = code, .body_len = len};
    if (len) memcpy(job->data, data, len);
    if (!tb_asgi_post(job)) free(job);
}

static void tb_ws_on_open(turbo_ws *ws, void *user) {
    turbo_ws_retain(ws); /* for sends from the loop's thread */
    tb_ws_post((tb_WebSocket *)user, TB_JOB_WS_OPEN, ws, 0, NULL, 0);
}

static void tb_ws_on_message(turbo_ws *ws, const char *data, size_t len, int text, void *user) {
    tb_WebSocket *w = (tb_WebSocket *)user;
    pthread_mutex_lock(&w->flow);
    w->posted += len;
    if (w->posted + w->waiting > TB_WS_INBOX_HIGH && !w->paused) turbo_ws_pause(ws, w->paused = 1);
    pthread_mutex_unlock(&w->flow);
    tb_ws_post(w, text ? TB_JOB_WS_TEXT : TB_JOB_WS_BINARY, ws, 0, data, len);
}

static void tb_ws_on_drain(turbo_ws *ws, void *user) {
    tb_ws_post((tb_WebSocket *)user, TB_JOB_WS_DRAIN, ws, 0, NULL, 0);
}

static void tb_ws_on_close(turbo_ws *ws, int code, void *user) {
    tb_ws_post((tb_WebSocket *)user, TB_JOB_WS_CLOSE, ws, code, NULL, 0);
}

static const turbo_ws_handler tb_ws_callbacks = {tb_ws_on_open, tb_ws_on_message, tb_ws_on_drain,
                                                 tb_ws_on_close};

/* 0 with accept set for a handshake turbo takes; else 1, answered (400, 426). */
static int tb_ws_refused(turbo_req *req, turbo_res *res, char accept[29]) {
    int status = turbo_ws_accept_key(req, accept);
    if (status == 426) turbo_res_header(res, "Sec-WebSocket-Version", "13");
    if (status) turbo_res_text(res, status, status == 426 ? "Upgrade Required" : "Bad Request");
    return status != 0;
}

static PyObject *tb_ws_new(turbo_req *req, const char *accept, const char *label, tb_plan *pl) {
    tb_WebSocket *w = (tb_WebSocket *)tb_WebSocketType.tp_alloc(&tb_WebSocketType, 0); /* zeroed */
    if (w) pthread_mutex_init(&w->flow, NULL);
    if (w && !(w->reply = tb_reply_new())) Py_CLEAR(w);
    if (!w) return PyErr_NoMemory();
    w->request.req = req;
    memcpy(w->accept, accept, sizeof w->accept);
    w->label = label;
    w->plan = pl;
    return (PyObject *)w;
}

static void tb_ws_dealloc(PyObject *self) {
    tb_WebSocket *w = (tb_WebSocket *)self;
    Py_XDECREF(w->inbox);
    Py_XDECREF(w->receiver);
    Py_XDECREF(w->sender);
    if (w->reply) tb_reply_free(w->reply);
    free(w->subprotocol);
    pthread_mutex_destroy(&w->flow);
    tb_request_dealloc(self);
}

/* Raises what a send, or an endpoint's receive, meets once closed:
   WebSocketDisconnect, or for a hosted app an OSError (as ASGI asks). */
static PyObject *tb_ws_closed(tb_WebSocket *w) {
    if (!w->ws && !w->code)
        return PyErr_Format(PyExc_RuntimeError, "%s: the WebSocket is not accepted yet", w->label);
    if (!w->plan) return PyErr_Format(PyExc_OSError, "%s: the WebSocket is closed", w->label);
    PyObject *e = PyObject_CallFunction(tb_WebSocketDisconnect, "i", w->code ? w->code : 1006);
    if (e) PyErr_SetObject(tb_WebSocketDisconnect, e);
    Py_XDECREF(e);
    return NULL;
}

/* A message received (str or bytes; NULL: the close) as a receive wants it:
   a new reference, or NULL with an exception. */
static PyObject *tb_ws_give(tb_WebSocket *w, int want, PyObject *item) {
    if (want == TB_WANT_MESSAGE) {
        PyObject *m = tb_asgi_message(item ? tb_s_ws_receive : tb_s_ws_disconnect);
        if (m && (item ? tb_put(m, PyUnicode_Check(item) ? tb_s_text : tb_s_bytes, Py_NewRef(item))
                       : tb_put(m, tb_s_code, PyLong_FromLong(w->code))) < 0)
            Py_CLEAR(m);
        return m;
    }
    if (!item) return tb_ws_closed(w);
    if (want == TB_WANT_JSON) return PyObject_CallOneArg(tb_json_loads, item);
    if (PyUnicode_Check(item) != (want == TB_WANT_TEXT))
        return PyErr_Format(PyExc_TypeError, "%s: the client sent a %s message, not %s", w->label,
                            PyUnicode_Check(item) ? "text" : "binary",
                            want == TB_WANT_TEXT ? "text" : "binary");
    return Py_NewRef(item);
}

/* The future a receive waits on, unless it was cancelled (asyncio.wait_for). Borrowed. */
static PyObject *tb_ws_receiver(tb_WebSocket *w) {
    PyObject *done = w->receiver ? PyObject_CallMethodNoArgs(w->receiver, tb_s_done) : NULL;
    if (done != Py_False) Py_CLEAR(w->receiver);
    Py_XDECREF(done);
    return w->receiver;
}

static PyObject *tb_ws_receive_as(tb_WebSocket *w, int want) {
    if (want == TB_WANT_MESSAGE && !w->connected) {
        w->connected = 1;
        return tb_ready_new(tb_asgi_message(tb_s_ws_connect));
    }
    if (want != TB_WANT_MESSAGE && w->defer)
        return PyErr_Format(PyExc_RuntimeError, "%s: receive before accept()", w->label);
    if (tb_ws_receiver(w)) return PyErr_Format(PyExc_RuntimeError, "%s: two receives at once", w->label);
    w->connected = 1;
    PyObject *item =
        w->inbox && PyObject_Size(w->inbox) > 0 ? PyObject_CallMethodNoArgs(w->inbox, tb_s_popleft) : NULL;
    tb_ws_settle(w, 0, 0, item ? (size_t)PyObject_Length(item) : 0);
    if (item || w->code) {
        PyObject *value = tb_ws_give(w, want, item);
        Py_XDECREF(item);
        return tb_ready_new(value);
    }
    if (!(w->receiver = PyObject_CallNoArgs(tb_loop_create_future))) return NULL;
    w->want = want;
    return Py_NewRef(w->receiver);
}

static PyObject *tb_ws_receive(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return tb_ws_receive_as((tb_WebSocket *)self, TB_WANT_MESSAGE);
}

static PyObject *tb_ws_receive_text(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return tb_ws_receive_as((tb_WebSocket *)self, TB_WANT_TEXT);
}

static PyObject *tb_ws_receive_bytes(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return tb_ws_receive_as((tb_WebSocket *)self, TB_WANT_BYTES);
}

static PyObject *tb_ws_receive_json(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return tb_ws_receive_as((tb_WebSocket *)self, TB_WANT_JSON);
}

/* On the loop's thread: an event turbo queued for the WebSocket. */
static void tb_ws_event(tb_asgi_job *job) {
    tb_WebSocket *w = job->ws;
    int message = job->kind == TB_JOB_WS_TEXT || job->kind == TB_JOB_WS_BINARY;
    size_t queued = 0;
    PyObject *item = job->kind == TB_JOB_WS_TEXT
                         ? PyUnicode_DecodeUTF8(job->data, (Py_ssize_t)job->body_len, NULL)
                     : message ? PyBytes_FromStringAndSize(job->data, (Py_ssize_t)job->body_len)
                               : NULL;
    if (job->kind == TB_JOB_WS_OPEN) {
        w->ws = job->socket;
        if (w->ended) turbo_ws_close(w->ws, 1000, NULL); /* the endpoint did not wait for its accept() */
    } else if (job->kind == TB_JOB_WS_CLOSE) {
        w->code = job->code;
    }
    PyObject *receiver = message || job->kind == TB_JOB_WS_CLOSE ? tb_ws_receiver(w) : NULL;
    if (message && !item) {
        tb_log_error_line(w->label); /* out of memory: the message is lost */
    } else if (receiver) {
        PyObject *value = tb_ws_give(w, w->want, item), *exc = value ? NULL : tb_take_exception();
        tb_done_with(PyObject_CallMethodOneArg(receiver, value ? tb_s_set_result : tb_s_set_exception,
                                               value ? value : exc),
                     w->label);
        Py_XDECREF(value);
        Py_XDECREF(exc);
        Py_CLEAR(w->receiver);
    } else if (message) {
        if (!w->inbox) w->inbox = PyObject_CallNoArgs(tb_deque);
        PyObject *appended = w->inbox ? PyObject_CallMethodOneArg(w->inbox, tb_s_append, item) : NULL;
        if (appended) queued = (size_t)PyObject_Length(item);
        tb_done_with(appended, w->label);
    }
    if (message) tb_ws_settle(w, job->body_len, queued, 0);
    if (!message && w->sender) { /* accept() or a send goes on */
        tb_done_with(PyObject_CallOneArg(tb_resolve, w->sender), w->label);
        Py_CLEAR(w->sender);
    }
    Py_XDECREF(item);
    if (job->kind == TB_JOB_WS_CLOSE) { /* the last: turbo lets go */
        if (w->ws) turbo_ws_release(w->ws);
        w->ws = NULL;
        Py_DECREF(w);
    }
}

/* Sends len bytes at p: an awaitable, done at once, or once turbo, which
   holds over 1 MiB of this WebSocket's, has sent most of it (on_drain). */
static PyObject *tb_ws_send_data(tb_WebSocket *w, const char *p, size_t len, int text) {
    int rc = w->ws ? turbo_ws_send(w->ws, p, len, text) : -1;
    if (rc < 0) return tb_ws_closed(w);
    if (rc == 0) return tb_ready_new(Py_NewRef(Py_None));
    if (!w->sender && !(w->sender = PyObject_CallNoArgs(tb_loop_create_future))) return NULL;
    return Py_NewRef(w->sender);
}

/* A str as text, anything else as binary (a bytes-like object). */
static PyObject *tb_ws_send_object(tb_WebSocket *w, PyObject *data) {
    Py_buffer view;
    Py_ssize_t n;
    if (PyUnicode_Check(data)) {
        const char *p = PyUnicode_AsUTF8AndSize(data, &n);
        return p ? tb_ws_send_data(w, p, (size_t)n, 1) : NULL;
    }
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    PyObject *r = tb_ws_send_data(w, (const char *)view.buf, (size_t)view.len, 0);
    PyBuffer_Release(&view);
    return r;
}

static PyObject *tb_ws_send_text(PyObject *self, PyObject *data) {
    if (!PyUnicode_Check(data)) return PyErr_Format(PyExc_TypeError, "send_text() takes a str, not %R", data);
    return tb_ws_send_object((tb_WebSocket *)self, data);
}

static PyObject *tb_ws_send_bytes(PyObject *self, PyObject *data) {
    if (PyUnicode_Check(data)) return PyErr_Format(PyExc_TypeError, "send_bytes() takes bytes, not %R", data);
    return tb_ws_send_object((tb_WebSocket *)self, data);
}

static PyObject *tb_ws_send_json(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"data", "mode", NULL};
    PyObject *data;
    const char *mode = "text";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|s:send_json", kwlist, &data, &mode)) return NULL;
    turbo_buf *buf = tb_to_json(data, 0);
    if (!buf) return NULL;
    PyObject *r = tb_ws_send_data((tb_WebSocket *)self, buf->data, buf->len, strcmp(mode, "binary") != 0);
    tb_scratch_done(buf);
    return r;
}

/* The 101 goes out from the connection's turbo thread (no GIL). */
static void tb_ws_upgrade(turbo_res *res, void *arg) {
    tb_WebSocket *w = (tb_WebSocket *)arg;
    if (res) {
        tb_reply_put_headers(res, w->reply);
        if (turbo_res_websocket(res, w->accept, w->subprotocol, &tb_ws_callbacks, w)) return;
    }
    tb_ws_post(w, TB_JOB_WS_CLOSE, NULL, 1006, NULL, 0); /* gone before the 101, or out of memory (a 500) */
}

static PyObject *tb_ws_accept_with(tb_WebSocket *w, PyObject *subprotocol, PyObject *headers) {
    const char *sub = subprotocol && subprotocol != Py_None ? PyUnicode_AsUTF8(subprotocol) : NULL;
    if (!w->defer)
        return PyErr_Format(PyExc_RuntimeError, "%s: accept() after accept() or close()", w->label);
    if ((sub == NULL && subprotocol && subprotocol != Py_None) ||
        (headers && headers != Py_None && tb_reply_headers(w->reply, headers) < 0))
        return NULL;
    if (sub && !(w->subprotocol = strdup(sub))) return PyErr_NoMemory();
    if (!(w->sender = PyObject_CallNoArgs(tb_loop_create_future))) return NULL;
    turbo_defer *d = w->defer;
    w->defer = NULL;
    w->connected |= w->plan != NULL; /* as Starlette's accept(), which receives websocket.connect */
    Py_INCREF(w);                    /* the callbacks' user, until the close */
    tb_loop_resume(d, tb_ws_upgrade, w);
    return Py_NewRef(w->sender);
}

static PyObject *tb_ws_accept(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"subprotocol", "headers", NULL};
    PyObject *subprotocol = NULL, *headers = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OO:accept", kwlist, &subprotocol, &headers)) return NULL;
    return tb_ws_accept_with((tb_WebSocket *)self, subprotocol, headers);
}

/* Answers the handshake with a instead of a 101: w->reply as a 403 (as
   uvicorn refuses one), or (NULL) a 500. */
static void tb_ws_refuse(tb_WebSocket *w, tb_reply *a) {
    turbo_defer *d = w->defer;
    w->defer = NULL;
    if (a == w->reply) {
        a->status = 403;
        w->reply = NULL;
    }
    w->code = 1006;
    tb_loop_resume(d, tb_reply_write, a);
}

/* Before accept(), the handshake is refused (403). turbo sends another
   code than it may as 1000, a reason cut to 123 bytes. */
static PyObject *tb_ws_close_with(tb_WebSocket *w, int code, PyObject *reason) {
    const char *text = reason && reason != Py_None ? PyUnicode_AsUTF8(reason) : NULL;
    if (text == NULL && reason && reason != Py_None) return NULL;
    if (w->defer) tb_ws_refuse(w, w->reply);
    else if (w->ws) turbo_ws_close(w->ws, code, text);
    return tb_ready_new(Py_NewRef(Py_None));
}

static PyObject *tb_ws_close(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"code", "reason", NULL};
    int code = 1000;
    PyObject *reason = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|iO:close", kwlist, &code, &reason)) return NULL;
    return tb_ws_close_with((tb_WebSocket *)self, code, reason);
}

/* send(message): an ASGI message, websocket.accept, websocket.send or websocket.close. */
static PyObject *tb_ws_send(PyObject *self, PyObject *msg) {
    tb_WebSocket *w = (tb_WebSocket *)self;
    const char *t = tb_message_type(msg);
    PyObject *a = NULL, *b = NULL, *r = NULL;
    if (!t) return tb_hosted_fail(w->label, "sent a message without a str 'type'");
    if (strcmp(t, "websocket.accept") == 0) {
        r = tb_ws_accept_with(w, a = tb_item(msg, tb_s_subprotocol), b = tb_item(msg, tb_s_headers));
    } else if (strcmp(t, "websocket.send") == 0) {
        if ((a = tb_item(msg, tb_s_bytes)) || (b = tb_item(msg, tb_s_text)))
            r = tb_ws_send_object(w, a ? a : b);
        else tb_hosted_fail(w->label, "sent websocket.send without bytes or text");
    } else if (strcmp(t, "websocket.close") == 0) {
        long code = (a = tb_item(msg, tb_s_code)) ? PyLong_AsLong(a) : 1000;
        if (!PyErr_Occurred()) r = tb_ws_close_with(w, (int)code, b = tb_item(msg, tb_s_reason));
    } else {
        PyErr_Format(PyExc_RuntimeError, "%s: sent a message of unknown type '%s'", w->label, t);
    }
    Py_XDECREF(a);
    Py_XDECREF(b);
    return r;
}

/* The endpoint (or hosted app) has ended: a handshake not answered yet is
   refused (403; 500 after an exception, or from a hosted app, as uvicorn),
   an open WebSocket closed (1011 after an exception). */
static PyObject *tb_ws_done(PyObject *self, PyObject *future) {
    tb_WebSocket *w = (tb_WebSocket *)self;
    PyObject *cancelled = PyObject_CallMethod(future, "cancelled", NULL); /* at shutdown: not logged */
    PyObject *result = cancelled == Py_False ? PyObject_CallMethodNoArgs(future, tb_s_result) : NULL;
    PyObject *exc = result || cancelled == Py_True ? NULL : tb_take_exception();
    w->ended = 1;
    if (exc && !PyErr_GivenExceptionMatches(exc, tb_WebSocketDisconnect)) { /* that one: the client left */
        if (w->plan) tb_log_route_exception(w->plan, exc);
        else tb_log_exception(w->label, exc);
    } else if (!exc && w->defer && !w->plan) {
        PySys_FormatStderr("turbo: %s: returned without accepting or closing the WebSocket\n", w->label);
    }
    if (w->defer) tb_ws_refuse(w, exc || !w->plan ? NULL : w->reply);
    else if (w->ws) turbo_ws_close(w->ws, exc ? 1011 : 1000, NULL);
    Py_XDECREF(cancelled);
    Py_XDECREF(result);
    Py_XDECREF(exc);
    Py_RETURN_NONE;
}

static PyMethodDef tb_ws_done_def = {"done", tb_ws_done, METH_O, NULL};

/* Runs coro, w's endpoint or hosted app, as a task made by start; d is the
   handshake's answer. */
static void tb_ws_run(tb_WebSocket *w, turbo_defer *d, PyObject *coro, PyObject *start) {
    PyObject *done = PyCFunction_New(&tb_ws_done_def, (PyObject *)w), *task = NULL, *added = NULL;
    w->defer = d; /* first: the task may run at once */
    if (done && (task = PyObject_CallOneArg(start, coro)))
        added = PyObject_CallMethodOneArg(task, tb_s_add_done_callback, done);
    if (!added) {
        tb_log_error_line(w->label);
        if (!task) tb_close_coroutine(coro);
        if (w->defer) tb_ws_refuse(w, NULL);
    }
    Py_XDECREF(added);
    Py_XDECREF(task);
    Py_XDECREF(done);
}

/* The turbo_handler of an @app.websocket route (user: its plan). */
static void tb_ws_handler(turbo_req *req, turbo_res *res, void *user) {
    tb_plan *pl = (tb_plan *)user;
    PyObject *stack[TB_MAX_ARGS + 1], **args = stack + 1, *coro = NULL; /* args[-1] free for vectorcall */
    char accept[29];
    if (tb_ws_refused(req, res, accept)) return;
    PyObject *w = tb_ws_new(req, accept, pl->label, pl);
    tb_Request *request = (tb_Request *)w;
    int rc = w ? tb_build_args(pl, req, res, args, &request) : -1;
    if (rc == 0) {
        coro = PyObject_Vectorcall(pl->func, args, (size_t)pl->npositional | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                   pl->kwnames);
        for (int i = 0; i < pl->nparams; i++) Py_DECREF(args[i]);
    }
    if (w) tb_request_detach((tb_Request *)w, pl->label);
    turbo_defer *d = coro ? turbo_res_defer(res) : NULL;
    if (coro && !d) {
        tb_close_coroutine(coro);
        PyErr_NoMemory();
    }
    if (d) tb_ws_run((tb_WebSocket *)w, d, coro, tb_loop_submit);
    else if (rc != 1) tb_answer_exception(res, pl, NULL, NULL);
    Py_XDECREF(coro);
    Py_XDECREF(w);
}

/* On the loop's thread: a hosted app's handshake (TB_JOB_WEBSOCKET) becomes a task running it. */
static void tb_ws_start_hosted(tb_asgi_job *job) {
    tb_mount *m = job->mount;
    PyObject *scope = tb_asgi_scope(job), *coro = NULL;
    PyObject *ws_scope = scope ? PyObject_CallOneArg(tb_websocket_scope, scope) : NULL;
    PyObject *w = ws_scope ? tb_ws_new(NULL, job->accept, m->label, NULL) : NULL;
    PyObject *receive = w ? PyObject_GetAttrString(w, "receive") : NULL;
    PyObject *send = receive ? PyObject_GetAttrString(w, "send") : NULL;
    if (send) coro = PyObject_CallFunctionObjArgs(m->app, ws_scope, receive, send, NULL);
    if (coro) {
        tb_ws_run((tb_WebSocket *)w, job->defer, coro, tb_loop_create_task);
    } else {
        tb_log_error_line(m->label);
        turbo_defer_resume(job->defer, tb_reply_write, NULL); /* a 500 */
    }
    tb_asgi_link_drop(job->link); /* the connection's end matters to the WebSocket's events only */
    Py_XDECREF(coro);
    Py_XDECREF(send);
    Py_XDECREF(receive);
    Py_XDECREF(w);
    Py_XDECREF(ws_scope);
    Py_XDECREF(scope);
}

static PyMethodDef tb_ws_methods[] = {
    {"accept", (PyCFunction)(void (*)(void))tb_ws_accept, METH_VARARGS | METH_KEYWORDS,
     "await accept(subprotocol=None, headers=None): the handshake's answer, 101."},
    {"receive", tb_ws_receive, METH_NOARGS,
     "await receive(): the next ASGI message (websocket.connect first, websocket.disconnect last)."},
    {"receive_text", tb_ws_receive_text, METH_NOARGS, "await receive_text(): the next message, text."},
    {"receive_bytes", tb_ws_receive_bytes, METH_NOARGS, "await receive_bytes(): the next message, binary."},
    {"receive_json", tb_ws_receive_json, METH_NOARGS, "await receive_json(): the next message, parsed."},
    {"send", tb_ws_send, METH_O, "await send(message): an ASGI message (websocket.accept, .send, .close)."},
    {"send_text", tb_ws_send_text, METH_O, "await send_text(data): a text message."},
    {"send_bytes", tb_ws_send_bytes, METH_O, "await send_bytes(data): a binary message."},
    {"send_json", (PyCFunction)(void (*)(void))tb_ws_send_json, METH_VARARGS | METH_KEYWORDS,
     "await send_json(data, mode='text'): data as JSON, a text (or binary) message."},
    {"close", (PyCFunction)(void (*)(void))tb_ws_close, METH_VARARGS | METH_KEYWORDS,
     "await close(code=1000, reason=None): the closing handshake; before accept(), a 403."},
    {NULL, NULL, 0, NULL}};

/* ---- WSGI (PEP 3333): the app runs on the turbo thread, which its loop
   leaves behind if it blocks */

/* start_response, one per request; write() is its method. Once a streamed
   body has begun, the head has gone out: reply->body_only. */
typedef struct {
    PyObject_HEAD
    tb_reply *reply;
    tb_mount *mount;
    turbo_res *res; /* while the app runs: write() sends at once */
    int started;
} tb_WSGIStart;

static int tb_wsgi_send_held(tb_WSGIStart *s, turbo_res *res);

/* Appends a part of the body; past the app's Content-Length the rest is
   dropped, as gunicorn drops it (a stream can only be cut short), and
   said once. 0, or -1 with an exception. */
static int tb_wsgi_body(tb_WSGIStart *s, PyObject *part) {
    tb_reply *a = s->reply;
    long long held = a->length - a->sent; /* what the length leaves room for */
    if (tb_reply_body(a, part) < 0) return -1;
    if (a->length >= 0 && (long long)a->body.len > held) {
        if (!a->cut)
            PySys_FormatStderr("turbo: %s: the body went past its Content-Length: cut there\n",
                               s->mount->label);
        a->cut = 1;
        a->body.len = held > 0 ? (size_t)held : 0;
    }
    return 0;
}

/* PEP 3333's write(): its bytes go out as a streamed part's do. */
static PyObject *tb_wsgi_write(PyObject *self, PyObject *data) {
    tb_WSGIStart *s = (tb_WSGIStart *)self;
    if (!s->started) return tb_hosted_fail(s->mount->label, "write() before start_response");
    if (!s->res) return tb_hosted_fail(s->mount->label, "write() after the app returned");
    if (tb_wsgi_body(s, data) < 0) return NULL;
    tb_wsgi_send_held(s, s->res); /* a client gone: the rest is dropped */
    Py_RETURN_NONE;
}

static PyMethodDef tb_wsgi_write_def = {"write", tb_wsgi_write, METH_O, NULL};

static PyObject *tb_wsgi_start_call(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"status", "headers", "exc_info", NULL};
    tb_WSGIStart *s = (tb_WSGIStart *)self;
    PyObject *status, *headers, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UO|O:start_response", kwlist, &status, &headers, &exc_info))
        return NULL;
    if (s->started && exc_info == Py_None)
        return PyErr_Format(PyExc_RuntimeError, "%s: start_response called twice without exc_info",
                            s->mount->label);
    /* PEP 3333: once body bytes have come, the head counts as sent (turbo
       may hold it back for a length): too late to replace, the error is
       raised again. */
    if (exc_info != Py_None && s->started && (s->reply->body_only || s->reply->body.len)) {
        if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3 ||
            !PyExceptionInstance_Check(PyTuple_GET_ITEM(exc_info, 1)))
            return PyErr_Format(PyExc_TypeError, "%s: exc_info must be sys.exc_info()", s->mount->label);
        PyErr_SetObject((PyObject *)Py_TYPE(PyTuple_GET_ITEM(exc_info, 1)), PyTuple_GET_ITEM(exc_info, 1));
        return NULL;
    }
    const char *text = PyUnicode_AsUTF8(status);
    if (!text) return NULL;
    long code = strlen(text) >= 3 && Py_ISDIGIT(text[0]) && Py_ISDIGIT(text[1]) && Py_ISDIGIT(text[2])
                    ? (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0')
                    : -1;
    if (!tb_check_status(code)) return NULL;
    s->reply->status = (int)code; /* with exc_info, nothing has been sent: replace all */
    s->reply->headers.len = 0;
    s->reply->length = -1;
    if (tb_reply_headers(s->reply, headers) < 0) return NULL;
    s->started = 1;
    return PyCFunction_New(&tb_wsgi_write_def, self);
}

static PyObject *tb_io_BytesIO;

/* io.BytesIO(body): wsgi.input. */
static PyObject *tb_bytes_io(turbo_str body) {
    if (!body.len) return PyObject_CallNoArgs(tb_io_BytesIO);
    PyObject *bytes = PyBytes_FromStringAndSize(body.ptr, (Py_ssize_t)body.len);
    PyObject *io = bytes ? PyObject_CallOneArg(tb_io_BytesIO, bytes) : NULL;
    Py_XDECREF(bytes);
    return io;
}

/* "HTTP_" + the name in upper case, '-' as '_'; repeated headers joined by ", ". */
static int tb_wsgi_add_header(PyObject *env, turbo_str name, turbo_str value) {
    char key[300];
    size_t n = name.len;
    /* "X_Forwarded_For" would pass for the X-Forwarded-For a proxy sets (and
       a name cut short for another one): such names are left out, as
       gunicorn and nginx leave them. */
    if (n > sizeof key - 6 || memchr(name.ptr, '_', n)) return 0;
    memcpy(key, "HTTP_", 5);
    for (size_t i = 0; i < n; i++) key[5 + i] = name.ptr[i] == '-' ? '_' : (char)Py_TOUPPER(name.ptr[i]);
    key[5 + n] = '\0';
    PyObject *k = strcmp(key, "HTTP_CONTENT_TYPE") == 0 ? Py_NewRef(tb_e_content_type)
                  : strcmp(key, "HTTP_CONTENT_LENGTH") == 0
                      ? Py_NewRef(tb_e_content_length)
                      : PyUnicode_FromStringAndSize(key, (Py_ssize_t)n + 5);
    PyObject *v = k ? PyUnicode_DecodeLatin1(value.ptr, (Py_ssize_t)value.len, NULL) : NULL;
    PyObject *old = v ? PyDict_GetItemWithError(env, k) : NULL; /* borrowed; a str key cannot fail */
    if (old) Py_SETREF(v, PyUnicode_FromFormat("%U, %U", old, v));
    int rc = tb_put(env, k, v);
    Py_XDECREF(k);
    return rc;
}

/* A port's decimal text, without the cost of a format. */
static PyObject *tb_port_text(int port) {
    char digits[8], *o = digits + sizeof digits;
    do *--o = (char)('0' + port % 10);
    while ((port /= 10) > 0);
    return PyUnicode_FromStringAndSize(o, digits + sizeof digits - o);
}

static PyObject *tb_wsgi_environ(tb_mount *m, turbo_req *req, int multiprocess) {
    turbo_str method = turbo_req_method(req), query = turbo_req_query(req), body = turbo_req_body(req);
    turbo_str path = turbo_req_path(req), root = {"/", 1}; /* past the mount's prefix: "/" at least */
    path = path.len > m->prefix_len ? (turbo_str){path.ptr + m->prefix_len, path.len - m->prefix_len} : root;
    char host[64];
    int https, port = tb_peer(req, host, sizeof host, &https, 0); /* REMOTE_ADDR the peer, as gunicorn's */
    PyObject *server = tb_server_addr, *errors = PySys_GetObject("stderr"), *env = PyDict_New();
    if (!env ||
        tb_put(env, tb_e_request_method, PyUnicode_FromStringAndSize(method.ptr, (Py_ssize_t)method.len)) <
            0 ||
        tb_put(env, tb_e_script_name, Py_NewRef(m->root_path)) < 0 ||
        tb_put(env, tb_e_path_info, tb_decoded_str(path.ptr, path.len, TB_LATIN1)) < 0 ||
        tb_put(env, tb_e_query_string,
               PyUnicode_DecodeLatin1(query.len ? query.ptr : "", (Py_ssize_t)query.len, NULL)) < 0 ||
        tb_put(env, tb_e_server_protocol,
               Py_NewRef(turbo_req_version(req) == 10 ? tb_e_http_1_0 : tb_e_http_1_1)) < 0 ||
        tb_put(env, tb_e_remote_addr, port < 0 ? Py_NewRef(tb_s_empty) : PyUnicode_FromString(host)) < 0 ||
        tb_put(env, tb_e_server_name, Py_NewRef(server ? PyTuple_GET_ITEM(server, 0) : Py_None)) < 0 ||
        tb_put(env, tb_e_server_port,
               server ? PyObject_Str(PyTuple_GET_ITEM(server, 1)) : Py_NewRef(tb_s_empty)) < 0 ||
        tb_put(env, tb_e_remote_port, port < 0 ? Py_NewRef(tb_s_empty) : tb_port_text(port)) < 0 ||
        tb_put(env, tb_e_version, Py_NewRef(tb_wsgi_version)) < 0 ||
        tb_put(env, tb_e_url_scheme, Py_NewRef(https ? tb_s_https : tb_s_http)) < 0 ||
        tb_put(env, tb_e_input, tb_bytes_io(body)) < 0 ||
        tb_put(env, tb_e_errors, Py_NewRef(errors ? errors : Py_None)) < 0 ||
        tb_put(env, tb_e_multithread, Py_NewRef(Py_True)) < 0 ||
        tb_put(env, tb_e_multiprocess, Py_NewRef(multiprocess ? Py_True : Py_False)) < 0 ||
        tb_put(env, tb_e_run_once, Py_NewRef(Py_False)) < 0 ||
        /* the body is whole, read to its end (a chunked one has no CONTENT_LENGTH) */
        tb_put(env, tb_e_input_terminated, Py_NewRef(Py_True)) < 0)
        Py_CLEAR(env);
    for (int i = 0; env && i < turbo_req_header_count(req); i++)
        if (tb_wsgi_add_header(env, turbo_req_header_name(req, i), turbo_req_header_value(req, i)) < 0)
            Py_CLEAR(env);
    return env;
}

/* Sends the head (the first time) and the body so far (the GIL let go
   while the client takes it): 0, or 1 when the client has gone. */
static int tb_wsgi_flush(tb_WSGIStart *s, turbo_res *res) {
    int rc;
    tb_reply_put(res, s->reply);
    s->reply->body_only = 1;
    s->reply->sent += (long long)s->reply->body.len;
    s->reply->body.len = 0;
    Py_BEGIN_ALLOW_THREADS
    rc = turbo_res_flush(res);
    Py_END_ALLOW_THREADS
    return rc < 0 ? 1 : 0;
}

#define TB_WSGI_HELD (64 * 1024)

/* Sends the body held so far of a streamed answer: each part as it comes
   when the app stated no length (PEP 3333); under a stated one, once 64
   KiB are held (a smaller body goes out whole, or as a clean 500 if the app
   fails, and a big one, werkzeug's send_file, is never held whole). 0, or
   1 when the client has gone. */
static int tb_wsgi_send_held(tb_WSGIStart *s, turbo_res *res) {
    size_t held = s->reply->body.len;
    return held && (s->reply->length < 0 || held >= TB_WSGI_HELD) ? tb_wsgi_flush(s, res) : 0;
}

/* Runs the app's iterable to its end (or the client's), then its close(),
   whatever happens. A body from anything but a list or a tuple is
   streamed (tb_wsgi_send_held). A close() that raises is logged; the
   answer stands. 0, 1 if the client has gone, -1 with an exception. */
static int tb_wsgi_consume(tb_WSGIStart *start, PyObject *result, turbo_res *res) {
    PyObject *it = PyObject_GetIter(result), *part;
    int rc = it ? 0 : -1, stream = !PyList_CheckExact(result) && !PyTuple_CheckExact(result);
    while (it && rc == 0 && (part = PyIter_Next(it)) != NULL) {
        if (!start->started)
            rc = (tb_hosted_fail(start->mount->label, "the app's body came before start_response"), -1);
        else rc = tb_wsgi_body(start, part);
        if (rc == 0 && stream) rc = tb_wsgi_send_held(start, res);
        Py_DECREF(part);
    }
    if (rc == 0 && PyErr_Occurred()) rc = -1;
    Py_XDECREF(it);
    PyObject *exc = rc < 0 ? tb_take_exception() : NULL; /* the first error is the one told */
    /* A list or a tuple has no close(): not looked up (a miss makes an AttributeError). */
    PyObject *close = stream ? PyObject_GetAttr(result, tb_s_close) : NULL, *closed = NULL;
    if (!close) PyErr_Clear(); /* no close(), as for PyObject_HasAttr */
    else if (!(closed = PyObject_CallNoArgs(close))) tb_log_exception(start->mount->label, NULL);
    Py_XDECREF(closed);
    Py_XDECREF(close);
    if (exc) {
        PyErr_Clear();
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return rc;
}

static int tb_multiprocess; /* wsgi.multiprocess */

/* The turbo_handler of a mounted WSGI app. */
static void tb_wsgi_handler(turbo_req *req, turbo_res *res, void *user) {
    tb_mount *m = (tb_mount *)user;
    tb_WSGIStart *start = (tb_WSGIStart *)tb_WSGIStartType.tp_alloc(&tb_WSGIStartType, 0); /* zeroed */
    PyObject *env = NULL, *result = NULL;
    int rc = -1;
    if (start) {
        start->reply = tb_reply_new();
        start->mount = m;
    }
    if (start && start->reply) start->res = res;
    if (start && start->reply && (env = tb_wsgi_environ(m, req, tb_multiprocess)) &&
        (result = PyObject_CallFunctionObjArgs(m->app, env, (PyObject *)start, NULL)))
        rc = tb_wsgi_consume(start, result, res);
    if (start) start->res = NULL;
    if (rc == 0 && !start->started)
        rc = (tb_hosted_fail(m->label, "the app returned without calling start_response"), -1);
    if (rc >= 0) { /* the answer, or the rest of a stream (turbo ends it) */
        tb_reply_write(res, start->reply);
    } else {
        tb_log_exception(m->label, NULL);
        if (start && start->reply && start->reply->body_only) turbo_res_abort(res); /* too late for a 500 */
        else tb_send_500(res);
        if (start && start->reply) tb_reply_free(start->reply);
    }
    Py_XDECREF(result);
    Py_XDECREF(env);
    Py_XDECREF(start);
}

/* ================================================================ turbo.App */

typedef struct {
    char *method, *pattern;
    turbo_handler handler;
    void *user;
    int flags; /* TURBO_BLOCKING */
} tb_entry;

typedef struct {
    PyObject_HEAD
    tb_entry *entries; /* every route, registered again on the real server by run() */
    size_t nentries;
    tb_plan **plans;
    size_t nplans;
    turbo_server *check; /* refuses bad or conflicting patterns when they are declared */
    tb_mount **mounts;   /* hosted ASGI and WSGI apps */
    size_t nmounts;
    int has_async;
    int serving; /* inside run() */
    pid_t run_pid;
    turbo_server *server; /* while serving */
    int start_failed;     /* this process's lifespan could not start */
} tb_App;

/* A WebSocket route ("WEBSOCKET", see _add_route) is a GET route. */
static const char *tb_route_method(const char *method) {
    return strcmp(method, "WEBSOCKET") == 0 ? "GET" : method;
}

/* Refuses a bad pattern, or one another route of the app has, as it is declared. */
static int tb_app_check(tb_App *app, const char *method, const char *pattern) {
    method = tb_route_method(method);
    if (app->serving) {
        PyErr_SetString(PyExc_RuntimeError, "routes cannot be added while the app is running");
        return -1;
    }
    if (!app->check && !(app->check = turbo_new(NULL))) {
        PyErr_NoMemory();
        return -1;
    }
    if (turbo_route_ex(app->check, method, pattern, tb_py_handler, NULL, 0) < 0) {
        PyErr_SetString(PyExc_ValueError, turbo_error(app->check));
        return -1;
    }
    return 0;
}

/* Keeps a route for run() to register (checked first, unless checked is set). */
static int tb_app_register(tb_App *app, const char *method, const char *pattern, turbo_handler h, void *user,
                           int flags, int checked) {
    if (!checked && tb_app_check(app, method, pattern) < 0) return -1;
    tb_entry *grown = (tb_entry *)PyMem_Realloc(app->entries, (app->nentries + 1) * sizeof *grown);
    if (!grown) {
        PyErr_NoMemory();
        return -1;
    }
    app->entries = grown;
    tb_entry *e = &grown[app->nentries];
    e->method = tb_strdup(tb_route_method(method));
    e->pattern = e->method ? tb_strdup(pattern) : NULL;
    if (!e->pattern) {
        PyMem_Free(e->method);
        return -1;
    }
    e->handler = h;
    e->user = user;
    e->flags = flags;
    app->nentries++;
    return 0;
}

/* App._check_route(pattern, methods): the route, checked as it is declared;
   run() registers it with _add_route. */
static PyObject *tb_app_check_route(PyObject *self, PyObject *args) {
    const char *pattern;
    PyObject *methods;
    if (!PyArg_ParseTuple(args, "sO!:_check_route", &pattern, &PyTuple_Type, &methods)) return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(methods); i++) {
        const char *m = PyUnicode_AsUTF8(PyTuple_GET_ITEM(methods, i));
        if (!m || tb_app_check((tb_App *)self, m, pattern) < 0) return NULL;
    }
    Py_RETURN_NONE;
}

/* App._add_route(pattern, label, endpoint, methods, status_code, blocking,
   response): App.run (turbo/__init__.py) registers each Python route here,
   checked already, with a turbo pattern and a tuple of methods in upper
   case ("WEBSOCKET": an @app.websocket endpoint). response, if not None,
   turns each result that is no Response into what is sent (the response
   model, turbo/_plans.py). */
static PyObject *tb_app_add_route(PyObject *self, PyObject *args) {
    tb_App *app = (tb_App *)self;
    const char *pattern, *label;
    PyObject *func, *methods, *response;
    int status, blocking;
    if (!PyArg_ParseTuple(args, "ssOO!ipO:_add_route", &pattern, &label, &func, &PyTuple_Type, &methods,
                          &status, &blocking, &response))
        return NULL;
    if (!PyCallable_Check(func))
        return PyErr_Format(PyExc_TypeError, "a route handler must be callable, not %R", func);
    if (!tb_check_status(status)) return NULL;
    tb_plan *pl = tb_plan_new(func, pattern, label, status);
    if (!pl) return NULL;
    tb_plan **grown = (tb_plan **)PyMem_Realloc(app->plans, (app->nplans + 1) * sizeof *grown);
    if (!grown) {
        tb_plan_free(pl);
        return PyErr_NoMemory();
    }
    app->plans = grown;
    grown[app->nplans++] = pl;
    pl->app = self;
    if (response != Py_None) pl->response = Py_NewRef(response);
    app->has_async |= pl->is_async;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(methods); i++) {
        const char *m = PyUnicode_AsUTF8(PyTuple_GET_ITEM(methods, i));
        turbo_handler h = m && strcmp(m, "WEBSOCKET") == 0 ? tb_ws_handler : tb_py_handler;
        int flags = TURBO_LOCKED | (blocking ? TURBO_BLOCKING : 0);
        if (!m || tb_app_register(app, m, pattern, h, pl, flags, 1) < 0) return NULL;
    }
    Py_RETURN_NONE;
}

static void tb_mount_free(tb_mount *m) {
    Py_XDECREF(m->app);
    Py_XDECREF(m->root_path);
    Py_XDECREF(m->state);
    PyMem_Free(m->label);
    PyMem_Free(m);
}

/* App._mount(patterns, app, is_asgi, root_path, prefix_len, label, state):
   turbo.App.mount (turbo/__init__.py), once it has checked the prefix
   and knows the interface, hands the app here with the "*" routes it
   takes: the prefix itself, and everything under it. */
static PyObject *tb_app_mount(PyObject *self, PyObject *args) {
    tb_App *app = (tb_App *)self;
    PyObject *patterns, *hosted, *root_path, *state;
    Py_ssize_t prefix_len;
    const char *label;
    int is_asgi;
    if (!PyArg_ParseTuple(args, "O!OpUnsO!:_mount", &PyTuple_Type, &patterns, &hosted, &is_asgi, &root_path,
                          &prefix_len, &label, &PyDict_Type, &state))
        return NULL;
    tb_mount *m = (tb_mount *)PyMem_Calloc(1, sizeof *m);
    tb_mount **grown = m ? (tb_mount **)PyMem_Realloc(app->mounts, (app->nmounts + 1) * sizeof *grown) : NULL;
    if (!grown) {
        PyMem_Free(m);
        return PyErr_NoMemory();
    }
    app->mounts = grown;
    grown[app->nmounts++] = m;
    m->state = Py_NewRef(state); /* filled by the app's lifespan, in each process */
    m->app = Py_NewRef(hosted);
    m->prefix_len = (size_t)prefix_len;
    m->root_path = Py_NewRef(root_path);
    if (!(m->label = tb_strdup(label))) return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(patterns); i++) {
        const char *pattern = PyUnicode_AsUTF8(PyTuple_GET_ITEM(patterns, i));
        turbo_handler h = is_asgi ? tb_asgi_handler : tb_wsgi_handler; /* ASGI: no GIL, a job for the loop */
        if (!pattern || tb_app_register(app, "*", pattern, h, m, is_asgi ? 0 : TURBO_LOCKED, 0) < 0)
            return NULL;
    }
    app->has_async |= is_asgi;
    Py_RETURN_NONE;
}

/* GIL held, in a serving process: the lifespan of the app's own handlers
   and of its mounted ASGI apps (App._lifespan, turbo/__init__.py). -1 when
   one of them failed to start (it said so), else 0. */
static int tb_lifespan(tb_App *app, int starting) {
    PyObject *r = PyObject_CallMethod((PyObject *)app, "_lifespan", "O", starting ? Py_True : Py_False);
    int failed = r == Py_False;
    tb_done_with(r, "lifespan");
    return failed ? -1 : 0;
}

/* What this process printed goes out before it ends with _exit. */
static void tb_flush_stdio(void) {
    for (int i = 0; i < 2; i++) {
        PyObject *f = PySys_GetObject(i == 0 ? "stdout" : "stderr"); /* borrowed */
        PyObject *r = f && f != Py_None ? PyObject_CallMethod(f, "flush", NULL) : NULL;
        Py_XDECREF(r);
        PyErr_Clear();
    }
}

/* App._native(method, pattern, address, blocking): a C turbo_handler at
   address, as App.native finds it in a library (turbo/__init__.py). */
static PyObject *tb_app_native(PyObject *self, PyObject *args) {
    const char *method, *pattern;
    PyObject *address;
    int blocking;
    if (!PyArg_ParseTuple(args, "ssO!p:_native", &method, &pattern, &PyLong_Type, &address, &blocking))
        return NULL;
    void *sym = PyLong_AsVoidPtr(address);
    turbo_handler handler;
    if (!sym) return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_ValueError, "no handler at address 0");
    memcpy(&handler, &sym, sizeof handler);
    if (tb_app_register((tb_App *)self, method, pattern, handler, NULL, blocking ? TURBO_BLOCKING : 0, 0) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* While turbo_run runs, the thread that called it holds the GIL only
   inside these hooks (see PROCESSES AND THE GIL, at the top, for the
   forks); the prefork supervisor never holds it. */
static void tb_before_fork(void *Py_UNUSED(arg)) {
    PyEval_RestoreThread(tb_thread_ts);
    PyOS_BeforeFork();
}

static void tb_after_fork(int in_child, void *Py_UNUSED(arg)) {
    if (in_child) PyOS_AfterFork_Child();
    else PyOS_AfterFork_Parent();
    tb_thread_ts = PyEval_SaveThread();
}

static void tb_on_process_start(int Py_UNUSED(process_index), void *arg) {
    tb_App *app = (tb_App *)arg;
    PyEval_RestoreThread(tb_thread_ts);
    if (app->has_async && tb_loop_start() < 0) tb_log_error_line("starting the asyncio loop");
    if (tb_lifespan(app, 1) < 0) { /* as uvicorn: an app that failed to start is not served */
        PySys_WriteStderr("turbo: application startup failed; exiting\n");
        if (getpid() != app->run_pid) {
            tb_flush_stdio();
            _exit(TURBO_EXIT_NO_START);
        }
        app->start_failed = 1;
        turbo_stop(app->server);
    }
    tb_thread_ts = PyEval_SaveThread();
}

static void tb_on_process_stop(int Py_UNUSED(process_index), void *arg) {
    tb_App *app = (tb_App *)arg;
    PyEval_RestoreThread(tb_thread_ts);
    tb_lifespan(app, 0);
    tb_loop_stop();
    tb_delete_worker_states();
    if (getpid() != app->run_pid) tb_flush_stdio(); /* a child process ends with _exit */
    tb_thread_ts = PyEval_SaveThread();
}

/* turbo_static for each (prefix, folder, index, dotfiles, cache_control) of
   App.static: 0, or -1 with an exception. */
static int tb_add_statics(turbo_server *s, PyObject *statics) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(statics); i++) {
        turbo_static_options o;
        const char *prefix, *folder;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(statics, i), "ssppz", &prefix, &folder, &o.index, &o.dotfiles,
                              &o.cache_control))
            return -1;
        if (turbo_static(s, prefix, folder, &o) != 0) {
            PyErr_Format(PyExc_ValueError, "turbo: %s", turbo_error(s));
            return -1;
        }
    }
    return 0;
}

/* App._run(host, port, processes, threads, blocking_threads, needs_loop,
   statics, keep_gil_ms, forwarded_allow_ips): App.run (turbo/__init__.py)
   ends here with the values checked. */
static PyObject *tb_app_run(PyObject *self_obj, PyObject *args) {
    tb_App *self = (tb_App *)self_obj;
    const char *host;
    int port, processes, threads, blocking_threads, needs_loop, keep_gil_ms;
    PyObject *statics;
    const char *proxies;
    if (!PyArg_ParseTuple(args, "siiiipO!is:_run", &host, &port, &processes, &threads, &blocking_threads,
                          &needs_loop, &PyTuple_Type, &statics, &keep_gil_ms, &proxies))
        return NULL;
    self->has_async |= needs_loop;
    if (self->serving) return PyErr_Format(PyExc_RuntimeError, "this App is already running");
    if (tb_set_proxies(proxies) < 0) return NULL; /* while no thread that reads it runs */
    tb_keep_gil_ms = keep_gil_ms;
    turbo_config cfg = {.host = host,
                        .port = port == 0 ? -1 : port,
                        .threads = threads,
                        .processes = processes > 1 ? processes : 0,
                        .blocking_threads = blocking_threads,
                        .on_process_start = tb_on_process_start,
                        .on_process_stop = tb_on_process_stop,
                        .before_fork = tb_before_fork,
                        .after_fork = tb_after_fork,
                        .acquire = tb_gil_acquire,
                        .release = tb_gil_release,
                        .keep_ms = tb_gil_keep,
                        .hook_arg = self,
                        .json_errors = 1};
    if (turbo_config_env(&cfg) < 0)
        return PyErr_Format(PyExc_ValueError, "a TURBO_* environment variable is invalid (see stderr)");
    turbo_server *s = turbo_new(&cfg);
    if (!s) return PyErr_NoMemory();
    int rc = -1;
    for (size_t i = 0; i < self->nentries; i++) {
        tb_entry *e = &self->entries[i];
        if (turbo_route_ex(s, e->method, e->pattern, e->handler, e->user, e->flags) < 0) {
            PyErr_Format(PyExc_RuntimeError, "turbo: %s", turbo_error(s));
            goto done;
        }
    }
    if (tb_add_statics(s, statics) < 0) goto done;
    if (turbo_listen(s) < 0) {
        PyErr_Format(PyExc_OSError, "turbo: %s", turbo_error(s));
        goto done;
    }
    Py_XSETREF(tb_server_addr, Py_BuildValue("(si)", host, turbo_port(s)));
    tb_multiprocess = processes > 1;
    tb_interp = PyInterpreterState_Get();
    self->run_pid = getpid();
    self->serving = 1;
    self->server = s;
    self->start_failed = 0;
    tb_thread_ts = tb_run_ts = PyEval_SaveThread();
    rc = turbo_run(s);
    PyEval_RestoreThread(tb_thread_ts);
    self->serving = 0;
    self->server = NULL;
    if (rc == TURBO_EXIT_NO_START || self->start_failed) { /* exit status 3, as uvicorn's */
        PyObject *code = PyLong_FromLong(TURBO_EXIT_NO_START);
        if (code) PyErr_SetObject(PyExc_SystemExit, code);
        Py_XDECREF(code);
        rc = -1;
    } else if (rc != 0) {
        PyErr_Format(PyExc_RuntimeError, "turbo: %s", turbo_error(s));
    }
done:
    turbo_free(s);
    if (rc != 0) return NULL;
    Py_RETURN_NONE;
}

static void tb_app_free_routes(tb_App *app) {
    for (size_t i = 0; i < app->nentries; i++) {
        PyMem_Free(app->entries[i].method);
        PyMem_Free(app->entries[i].pattern);
    }
    for (size_t i = 0; i < app->nplans; i++) tb_plan_free(app->plans[i]);
    for (size_t i = 0; i < app->nmounts; i++) tb_mount_free(app->mounts[i]);
    PyMem_Free(app->entries);
    PyMem_Free(app->plans);
    PyMem_Free(app->mounts);
    turbo_free(app->check);
    app->entries = NULL;
    app->plans = NULL;
    app->mounts = NULL;
    app->check = NULL;
    app->nentries = app->nplans = app->nmounts = 0;
}

static int tb_app_traverse(PyObject *self, visitproc visit, void *arg) {
    tb_App *app = (tb_App *)self;
    for (size_t i = 0; i < app->nmounts; i++) Py_VISIT(app->mounts[i]->app);
    for (size_t i = 0; i < app->nplans; i++) {
        Py_VISIT(app->plans[i]->func);
        Py_VISIT(app->plans[i]->response);
        for (int k = 0; k < app->plans[i]->nparams; k++) Py_VISIT(app->plans[i]->params[k].default_value);
    }
    return 0;
}

static int tb_app_clear(PyObject *self) {
    if (!((tb_App *)self)->serving) tb_app_free_routes((tb_App *)self);
    return 0;
}

static void tb_app_dealloc(PyObject *self) {
    PyObject_GC_UnTrack(self);
    tb_app_free_routes((tb_App *)self);
    Py_TYPE(self)->tp_free(self);
}

static PyMethodDef tb_app_methods[] = {
    {"_check_route", tb_app_check_route, METH_VARARGS,
     "_check_route(pattern, methods): refuses a bad or taken pattern, as a route is declared."},
    {"_add_route", tb_app_add_route, METH_VARARGS, "A Python route, as App.run registers it."},
    {"_native", tb_app_native, METH_VARARGS, "A C turbo_handler from a library, as App.native gives it."},
    {"_mount", tb_app_mount, METH_VARARGS, "An ASGI or WSGI app, as App.mount gives it."},
    {"_run", tb_app_run, METH_VARARGS,
     "_run(host, port, processes, threads, blocking_threads, needs_loop): serves, as App.run asks."},
    {NULL, NULL, 0, NULL}};

/* ================================================================ types and module */

/* clang-format off */
static PyTypeObject tb_AppType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "turbo.App",
    .tp_basicsize = sizeof(tb_App),
    .tp_dealloc = tb_app_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "App(): routes declared with decorators, served by app.run().",
    .tp_traverse = tb_app_traverse,
    .tp_clear = tb_app_clear,
    .tp_methods = tb_app_methods,
    .tp_new = PyType_GenericNew,
};

static PyTypeObject tb_RequestType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "turbo.Request",
    .tp_basicsize = sizeof(tb_Request),
    .tp_dealloc = tb_request_dealloc,
    .tp_repr = tb_request_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The raw request; declare a parameter annotated turbo.Request to get it.",
    .tp_methods = tb_request_methods,
    .tp_getset = tb_request_getset,
};

static PyTypeObject tb_ResponseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "turbo.Response",
    .tp_basicsize = sizeof(tb_Response),
    .tp_dealloc = tb_response_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = tb_response_traverse,
    .tp_clear = tb_response_clear,
    .tp_doc = "Response(content=b'', status_code=200, headers=None, media_type=None, background=None)",
    .tp_dictoffset = offsetof(tb_Response, dict),
    .tp_members = tb_response_members,
    .tp_getset = tb_response_getset,
    .tp_init = tb_response_init,
    .tp_new = PyType_GenericNew,
};

static PyTypeObject tb_JSONResponseType = { /* size, dealloc, init, new: Response's (its tp_base) */
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "turbo.JSONResponse",
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc
    = "JSONResponse(content, status_code=200, headers=None, media_type=None): content as JSON.",
};

static PyTypeObject tb_WebSocketType = { /* tp_base: Request (its path_params, headers...) */
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "turbo.WebSocket",
    .tp_basicsize = sizeof(tb_WebSocket),
    .tp_dealloc = tb_ws_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The WebSocket an @app.websocket endpoint is given, as Starlette's.",
    .tp_methods = tb_ws_methods,
};

static PyTypeObject tb_ReadyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "turbo._Ready",
    .tp_basicsize = sizeof(tb_Ready),
    .tp_dealloc = tb_ready_dealloc,
    .tp_as_async = &tb_ready_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = tb_ready_next,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

static PyTypeObject tb_ASGICallType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "turbo._ASGICall",
    .tp_basicsize = sizeof(tb_ASGICall),
    .tp_dealloc = tb_asgi_call_dealloc,
    .tp_call = tb_asgi_done,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

static PyTypeObject tb_WSGIStartType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "turbo._StartResponse",
    .tp_basicsize = sizeof(tb_WSGIStart), /* tp_dealloc: object's (it owns no reference) */
    .tp_call = tb_wsgi_start_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};

static PyTypeObject tb_PendingType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "turbo._Pending",
    .tp_basicsize = sizeof(tb_Pending),
    .tp_dealloc = tb_pending_dealloc,
    .tp_call = tb_pending_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
};
/* clang-format on */

/* form_parts(content_type, body): the parts of a multipart/form-data
   body as (name, filename or None, content type or None, head, data), for
   Request.form() (turbo/_support.py); None for another content type. */
static PyObject *tb_form_parts(PyObject *Py_UNUSED(self), PyObject *args) {
    turbo_str ct, body;
    Py_ssize_t ctn, bn;
    turbo_multipart m;
    turbo_part p;
    int rc = 1;
    if (!PyArg_ParseTuple(args, "s#y#:form_parts", &ct.ptr, &ctn, &body.ptr, &bn)) return NULL;
    ct.len = (size_t)ctn;
    body.len = (size_t)bn;
    if (turbo_multipart_begin(&m, ct, body) != 0) Py_RETURN_NONE;
    PyObject *parts = PyList_New(0); /* none in an empty body, as Starlette finds */
    while (parts && body.len && (rc = turbo_multipart_next(&m, &p)) == 1)
        if (tb_append(parts, Py_BuildValue("(s#z#z#y#y#)", p.name.ptr, (Py_ssize_t)p.name.len, p.filename.ptr,
                                           (Py_ssize_t)p.filename.len, p.content_type.ptr,
                                           (Py_ssize_t)p.content_type.len, p.head.ptr, (Py_ssize_t)p.head.len,
                                           p.data.ptr, (Py_ssize_t)p.data.len)) < 0)
            Py_CLEAR(parts);
    if (parts && rc < 0) Py_CLEAR(parts);
    if (rc < 0) PyErr_SetString(PyExc_ValueError, "malformed multipart/form-data body");
    return parts;
}

static PyMethodDef tb_module_methods[] = {
    {"form_parts", tb_form_parts, METH_VARARGS, "form_parts(content_type, body): a multipart body's parts."},
    {"json_loads", tb_json_loads_py, METH_O, "json_loads(body): json.loads(body), decoded in C when it can."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef tb_module = {
    PyModuleDef_HEAD_INIT,
    "turbo._turbo",
    "FastAPI-style Python apps on the turbo C HTTP server, with native C routes beside them.",
    -1,
    tb_module_methods,
    NULL,
    NULL,
    NULL,
    NULL};

static int tb_module_state_init(void) {
    PyObject *support = PyImport_ImportModule("turbo._support"); /* before any fork */
    if (!support) return -1;
    static const struct {
        PyObject **slot;
        const char *name;
    } names[] = {{&tb_Headers, "Headers"},
                 {&tb_QueryParams, "QueryParams"},
                 {&tb_plain, "plain"},
                 {&tb_json_loads, "loads"},
                 {&tb_JSONDecodeError, "JSONDecodeError"},
                 {&tb_Loop, "Loop"},
                 {&tb_resolve, "_resolve"},
                 {&tb_shield, "shield"},
                 {&tb_Body, "Body"},
                 {&tb_Address, "Address"},
                 {&tb_UploadFile, "UploadFile"},
                 {&tb_model_errors, "model_errors"},
                 {&tb_MutableHeaders, "MutableHeaders"},
                 {&tb_request_derive[TB_RQ_URL], "request_url"},
                 {&tb_request_derive[TB_RQ_COOKIES], "request_cookies"},
                 {&tb_request_derive[TB_RQ_SCOPE], "request_scope"},
                 {&tb_request_derive[TB_RQ_STATE], "State"},
                 {&tb_WebSocketDisconnect, "WebSocketDisconnect"},
                 {&tb_deque, "deque"},
                 {&tb_websocket_scope, "websocket_scope"}};
    /* Written in Python, put in a type's dict: a function is a method there, a property an attribute. */
    static const struct {
        PyTypeObject *type;
        const char *name, *function;
    } methods[] = {{&tb_RequestType, "form", "request_form"},
                   {&tb_RequestType, "stream", "request_stream"},
                   {&tb_RequestType, "base_url", "request_base_url"},
                   {&tb_RequestType, "app", "request_app"},
                   {&tb_ResponseType, "set_cookie", "set_cookie"},
                   {&tb_ResponseType, "delete_cookie", "delete_cookie"},
                   {&tb_ResponseType, "body_iterator", "body_iterator"},
                   {&tb_WebSocketType, "iter_text", "iter_text"},
                   {&tb_WebSocketType, "iter_bytes", "iter_bytes"},
                   {&tb_WebSocketType, "iter_json", "iter_json"}};
    int found = 1;
    for (size_t i = 0; found && i < sizeof names / sizeof *names; i++)
        found = (*names[i].slot = PyObject_GetAttrString(support, names[i].name)) != NULL;
    for (size_t i = 0; found && i < sizeof methods / sizeof *methods; i++) {
        PyObject *f = PyObject_GetAttrString(support, methods[i].function);
        found = f && PyDict_SetItemString(methods[i].type->tp_dict, methods[i].name, f) == 0;
        Py_XDECREF(f);
        PyType_Modified(methods[i].type);
    }
    Py_DECREF(support);
    if (!found) return -1;
    PyObject *io = PyImport_ImportModule("io");
    tb_io_BytesIO = io ? PyObject_GetAttrString(io, "BytesIO") : NULL;
    Py_XDECREF(io);
    if (!tb_io_BytesIO) return -1;
    if (!(tb_kw_dump = Py_BuildValue("(ss)", "mode", "by_alias")) ||
        !(tb_kw_by_alias = Py_BuildValue("(s)", "by_alias")) ||
        !(tb_wsgi_version = Py_BuildValue("(ii)", 1, 0)))
        return -1;
    static const struct {
        PyObject **slot;
        const char *text;
    } strings[] = {{&tb_s_pairs, "_pairs"},
                   {&tb_s_result, "result"},
                   {&tb_s_exception_handlers, "exception_handlers"},
                   {&tb_s_add_done_callback, "add_done_callback"},
                   {&tb_s_json, "json"},
                   {&tb_s_dict, "dict"},
                   {&tb_s_model_dump, "model_dump"},
                   {&tb_s_content, "content"},
                   {&tb_s_status_code, "status_code"},
                   {&tb_s_headers, "headers"},
                   {&tb_s_media_type, "media_type"},
                   {&tb_s_application_json, "application/json"},
                   {&tb_s_content_type, "Content-Type"},
                   {&tb_s_background, "background"},
                   {&tb_s_done, "done"},
                   {&tb_s_set_result, "set_result"},
                   {&tb_s_set_exception, "set_exception"},
                   {&tb_s_append, "append"},
                   {&tb_s_popleft, "popleft"},
                   {&tb_s_close, "close"},
                   {&tb_s_type, "type"},
                   {&tb_s_asgi, "asgi"},
                   {&tb_s_version, "version"},
                   {&tb_s_spec_version, "spec_version"},
                   {&tb_s_http_version, "http_version"},
                   {&tb_s_method, "method"},
                   {&tb_s_scheme, "scheme"},
                   {&tb_s_path, "path"},
                   {&tb_s_raw_path, "raw_path"},
                   {&tb_s_query_string, "query_string"},
                   {&tb_s_root_path, "root_path"},
                   {&tb_s_client, "client"},
                   {&tb_s_server, "server"},
                   {&tb_s_state, "state"},
                   {&tb_s_extensions, "extensions"},
                   {&tb_s_body, "body"},
                   {&tb_s_more_body, "more_body"},
                   {&tb_s_status, "status"},
                   {&tb_s_subprotocol, "subprotocol"},
                   {&tb_s_bytes, "bytes"},
                   {&tb_s_text, "text"},
                   {&tb_s_code, "code"},
                   {&tb_s_reason, "reason"},
                   {&tb_s_http, "http"},
                   {&tb_s_https, "https"},
                   {&tb_s_asgi_3_0, "3.0"},
                   {&tb_s_spec_2_3, "2.3"},
                   {&tb_s_http_1_0, "1.0"},
                   {&tb_s_http_1_1, "1.1"},
                   {&tb_s_slash, "/"},
                   {&tb_s_pathsend, "http.response.pathsend"},
                   {&tb_s_http_request, "http.request"},
                   {&tb_s_http_disconnect, "http.disconnect"},
                   {&tb_s_ws_connect, "websocket.connect"},
                   {&tb_s_ws_receive, "websocket.receive"},
                   {&tb_s_ws_disconnect, "websocket.disconnect"},
                   {&tb_s_empty, ""},
                   {&tb_e_request_method, "REQUEST_METHOD"},
                   {&tb_e_script_name, "SCRIPT_NAME"},
                   {&tb_e_path_info, "PATH_INFO"},
                   {&tb_e_query_string, "QUERY_STRING"},
                   {&tb_e_server_protocol, "SERVER_PROTOCOL"},
                   {&tb_e_remote_addr, "REMOTE_ADDR"},
                   {&tb_e_server_name, "SERVER_NAME"},
                   {&tb_e_server_port, "SERVER_PORT"},
                   {&tb_e_remote_port, "REMOTE_PORT"},
                   {&tb_e_version, "wsgi.version"},
                   {&tb_e_url_scheme, "wsgi.url_scheme"},
                   {&tb_e_input, "wsgi.input"},
                   {&tb_e_errors, "wsgi.errors"},
                   {&tb_e_multithread, "wsgi.multithread"},
                   {&tb_e_multiprocess, "wsgi.multiprocess"},
                   {&tb_e_run_once, "wsgi.run_once"},
                   {&tb_e_content_type, "CONTENT_TYPE"},
                   {&tb_e_content_length, "CONTENT_LENGTH"},
                   {&tb_e_http_1_0, "HTTP/1.0"},
                   {&tb_e_http_1_1, "HTTP/1.1"},
                   {&tb_e_input_terminated, "wsgi.input_terminated"}};
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
        if (!(*strings[i].slot = PyUnicode_InternFromString(strings[i].text))) return -1;
    if (pthread_key_create(&tb_scratch_key, tb_scratch_free) != 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__turbo(void) {
    /* The module's types (named as their tp_name says), then internal ones. */
    static PyTypeObject *const types[] = {&tb_AppType,          &tb_RequestType,   &tb_ResponseType,
                                          &tb_JSONResponseType, &tb_WebSocketType, &tb_PendingType,
                                          &tb_ReadyType,        &tb_ASGICallType,  &tb_WSGIStartType};
    const size_t public_types = 5;
    tb_JSONResponseType.tp_base = &tb_ResponseType;
    tb_WebSocketType.tp_base = &tb_RequestType;
    tb_ResponseType.tp_vectorcall = tb_response_vectorcall;
    tb_JSONResponseType.tp_vectorcall = tb_response_vectorcall;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (PyType_Ready(types[i]) < 0) return NULL;
    if (tb_module_state_init() < 0) return NULL;
    PyObject *m = PyModule_Create(&tb_module);
    for (size_t i = 0; m && i < public_types; i++)
        if (PyModule_AddType(m, types[i]) < 0) Py_CLEAR(m);
    if (m && PyModule_AddStringConstant(m, "__version__", "0.1.0") < 0) Py_CLEAR(m);
    return m;
}
