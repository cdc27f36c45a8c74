"""Hand-vectorised inner kernels of the ALS solve, emitted as LLVM IR into the Numba kernels.

Numba's auto-vectoriser leaves two loops far from the machine's limit: the Gram matrix of a
row's gathered vectors (it vectorises over ratings and pays a horizontal sum per entry) and the
Cholesky factorisation (not vectorised at all: the row updates may alias). Both are written here
with explicit SIMD vectors, the way BLAS micro-kernels are: every loaded vector feeds several
fused multiply-adds, sums stay in registers, nothing needs a horizontal sum. So are the two
small loops around them: the gather of a row's vectors into a block (a vector copy per rating)
and the back substitution.

They are Numba ``@intrinsic``\\ s, so they compile into the calling kernel (and its on-disk
cache) like any other code; only their bodies are IR. The vector width follows the CPU:
16 floats (AVX-512) or 8 (AVX2 and others), fixed when this module is imported. The environment
variable ``HYBRIDREC_SIMD_LANES=8`` forces the narrow kernels (the tests use it, with a fresh
Numba cache, to check the path AVX-512 machines do not take). Numba's cache is keyed on the
calling kernel's source file only: after editing this one, touch ``_kernels.py``.

Layout shared by the Gram, Cholesky and back-substitution kernels: the system is stored as the
*upper* triangle of a row-major float64 matrix ``a`` (row ``i`` holds entries ``j ≥ i``
contiguously). Entries below the diagonal and the padding columns hold scratch values and are
never read as results.
"""

from __future__ import annotations

import math
import os
from typing import Any

import llvmlite.binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


def _lanes() -> int:
    forced = os.environ.get("HYBRIDREC_SIMD_LANES", "")
    if forced in ("8", "16"):
        return int(forced)
    if forced:
        raise ValueError(f"HYBRIDREC_SIMD_LANES must be 8 or 16, not {forced!r}")
    return 16 if llvm.get_host_cpu_features().get("avx512f", False) else 8


#: float32 lanes per SIMD vector (the Gram kernel and the gather)
LANES = _lanes()
#: float64 lanes per SIMD vector (the Cholesky and the back substitution)
_F64_LANES = LANES // 2
#: extra columns the matrices need past the last used one (the kernels read and write whole
#: vectors; what lands there is scratch)
PAD = 2 * LANES
#: rows of ``a`` per Gram tile (each broadcast feeds two vector multiply-adds)
_TILE_ROWS = 6
#: rows of U computed together, and float64 vectors per row and column chunk (sums in flight)
_CHOL_ROWS = 4
_CHOL_VECTORS = 4 if LANES == 16 else 2
#: ``a``'s rows come in whole Gram tiles and whole Cholesky blocks
_ROW_MULTIPLE = math.lcm(_TILE_ROWS, _CHOL_ROWS)

_F32, _F64, _I64 = ir.FloatType(), ir.DoubleType(), ir.IntType(64)
_BITS = {ir.FloatType: 32, ir.DoubleType: 64}


@njit(cache=True, inline="always")
def padded_rows(d: int) -> int:
    """Rows ``a`` needs for a system of size ``d`` (whole Gram tiles and Cholesky blocks)."""
    return -(-d // _ROW_MULTIPLE) * _ROW_MULTIPLE


def _int(value: int) -> ir.Constant:
    return ir.Constant(_I64, value)


def _c_contiguous(*arrays: Any) -> bool:
    """Whether every array argument is C-contiguous (the kernels index raw data pointers)."""
    return all(isinstance(a, types.Array) and a.layout == "C" for a in arrays)


def _splat(builder: ir.IRBuilder, scalar: ir.Value, vty: ir.VectorType) -> ir.Value:
    undef = ir.Constant(vty, ir.Undefined)
    one = builder.insert_element(undef, scalar, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), vty.count), [0] * vty.count)
    return builder.shuffle_vector(one, undef, mask)


def _fma(builder: ir.IRBuilder, vty: ir.VectorType) -> ir.Function:
    """The ``llvm.fma`` intrinsic on vectors of ``vty`` (declared once per module)."""
    suffix = f"v{vty.count}f{_BITS[type(vty.element)]}"
    fnty = ir.FunctionType(vty, [vty, vty, vty])
    return cgutils.get_or_insert_function(builder.module, fnty, f"llvm.fma.{suffix}")


def _load_vector(
    builder: ir.IRBuilder, base: ir.Value, offset: ir.Value, vty: ir.VectorType
) -> ir.Value:
    """``vty`` read from ``base + offset`` elements (unaligned)."""
    ptr = builder.gep(base, [offset])
    return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=_BITS[type(vty.element)] // 8)


def _store_vector(builder: ir.IRBuilder, value: ir.Value, base: ir.Value, offset: ir.Value) -> None:
    """``value`` (a vector) written at ``base + offset`` elements (unaligned)."""
    ptr = builder.gep(base, [offset])
    align = _BITS[type(value.type.element)] // 8
    builder.store(value, builder.bitcast(ptr, value.type.as_pointer()), align=align)


def _matrix(
    context: Any, builder: ir.IRBuilder, aryty: types.Array, value: ir.Value
) -> tuple[ir.Value, ir.Value]:
    """(data pointer, row length) of a C-contiguous 2-D array argument."""
    array = context.make_array(aryty)(context, builder, value)
    _, cols = cgutils.unpack_tuple(builder, array.shape, 2)
    return array.data, cols


def _round_down(builder: ir.IRBuilder, value: ir.Value, multiple: int) -> ir.Value:
    return builder.and_(value, _int(-multiple))


def _gram_upper(typingctx: Any, block: Any, n: Any, d: Any, a: Any, first: Any) -> Any:
    """``a[i, j] (+)= Σ_r block[r, i] · block[r, j]`` for ``i < d``, ``i ≤ j ≤ d``.

    ``block`` (float32, ratings × columns) holds one gathered vector per row; column ``d`` is the
    rating's target, so row ``i`` of ``a`` ends with the right-hand side ``a[i, d]``. Sums are
    float32 over the block's ``n`` rows and then stored (``first``) or added into float64 ``a``.

    Tiles of 6 rows × 2 vectors: per rating, two vector loads and six broadcasts feed twelve
    multiply-adds into twelve vector sums held in registers. Columns ``d + 1 ..`` of ``block``
    must be zero and both arrays ``PAD`` columns wider than ``d + 1`` (tiles overhang).
    """
    if not _c_contiguous(block, a):
        return None
    sig = types.void(block, n, d, a, first)

    def codegen(
        context: Any, builder: ir.IRBuilder, signature: Any, args: list[ir.Value]
    ) -> ir.Value:
        bty, _, _, aty, _ = signature.args
        bdata, bcols = _matrix(context, builder, bty, args[0])
        adata, acols = _matrix(context, builder, aty, args[3])
        n_rows, size, first_flag = args[1], args[2], args[4]
        vf = ir.VectorType(_F32, LANES)
        vd = ir.VectorType(_F64, LANES)
        fma = _fma(builder, vf)
        acc = [[cgutils.alloca_once(builder, vf) for _ in range(2)] for _ in range(_TILE_ROWS)]
        zero = ir.Constant(vf, [0.0] * LANES)
        is_first = builder.icmp_unsigned("!=", first_flag, ir.Constant(first_flag.type, 0))
        columns = builder.add(size, _int(1))
        step = _int(2 * LANES)
        with cgutils.for_range_slice(builder, _int(0), size, _int(_TILE_ROWS)) as (i0, _):
            j_start = _round_down(builder, i0, LANES)
            with cgutils.for_range_slice(builder, j_start, columns, step) as (j0, _):
                for row in acc:
                    for slot in row:
                        builder.store(zero, slot)
                with cgutils.for_range(builder, n_rows) as loop:
                    base = builder.gep(bdata, [builder.mul(loop.index, bcols)])
                    x = [
                        _load_vector(builder, base, j0, vf),
                        _load_vector(builder, base, builder.add(j0, _int(LANES)), vf),
                    ]
                    for c in range(_TILE_ROWS):
                        offset = builder.add(i0, _int(c))
                        s = _splat(builder, builder.load(builder.gep(base, [offset])), vf)
                        for v in range(2):
                            builder.store(
                                builder.call(fma, [x[v], s, builder.load(acc[c][v])]), acc[c][v]
                            )
                for c in range(_TILE_ROWS):
                    row_start = builder.mul(builder.add(i0, _int(c)), acols)
                    for v in range(2):
                        offset = builder.add(row_start, builder.add(j0, _int(v * LANES)))
                        total = builder.fpext(builder.load(acc[c][v]), vd)
                        old = _load_vector(builder, adata, offset, vd)
                        new = builder.select(is_first, total, builder.fadd(old, total))
                        _store_vector(builder, new, adata, offset)
        return context.get_dummy_value()

    return sig, codegen


def _cholesky_upper(typingctx: Any, a: Any, d: Any, cols: Any) -> Any:
    """Factor ``A = Uᵀ U`` in place: ``A`` (symmetric positive definite) is the upper triangle
    of ``a[:d, :d]``, overwritten by ``U``; columns ``d .. cols`` are carried along, which
    turns a right-hand side ``b`` stored in column ``d`` into ``y = U⁻ᵀ b`` (the forward
    substitution for free).

    Rows are computed four at a time. First, every earlier row ``k`` of ``U`` is subtracted
    from the four rows at once (``row_r −= U[k, r] · U[k, :]``): each loaded vector of row ``k``
    feeds four multiply-adds into sums held in registers, so the matrix streams from cache a
    quarter as often. Then the four rows are finished in order among themselves (the few
    updates inside the block, the pivot's square root, the scaling). A pivot that is not
    positive (round-off on an empty row; the ridge term keeps real ones positive) becomes 1e-6.
    ``a`` needs ``padded_rows(d)`` rows and ``PAD`` more columns than ``cols``.
    """
    if not _c_contiguous(a):
        return None
    sig = types.void(a, d, cols)

    def codegen(
        context: Any, builder: ir.IRBuilder, signature: Any, args: list[ir.Value]
    ) -> ir.Value:
        adata, acols = _matrix(context, builder, signature.args[0], args[0])
        size, width = args[1], args[2]
        lanes = _F64_LANES
        vd = ir.VectorType(_F64, lanes)
        fma = _fma(builder, vd)
        sqrt = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_F64, [_F64]), "llvm.sqrt.f64"
        )
        acc = [
            [cgutils.alloca_once(builder, vd) for _ in range(_CHOL_VECTORS)]
            for _ in range(_CHOL_ROWS)
        ]

        def at(row: ir.Value, col: ir.Value) -> ir.Value:
            return builder.add(builder.mul(row, acols), col)

        with cgutils.for_range_slice(builder, _int(0), size, _int(_CHOL_ROWS)) as (i, _):
            rows = [builder.add(i, _int(r)) for r in range(_CHOL_ROWS)]
            first_col = _round_down(builder, i, lanes)
            chunk = _int(lanes * _CHOL_VECTORS)
            # 1. subtract the rows k < i, one chunk of columns at a time
            with cgutils.for_range_slice(builder, first_col, width, chunk) as (j0, _):
                cols = [builder.add(j0, _int(v * lanes)) for v in range(_CHOL_VECTORS)]
                for r in range(_CHOL_ROWS):
                    for v in range(_CHOL_VECTORS):
                        value = _load_vector(builder, adata, at(rows[r], cols[v]), vd)
                        builder.store(value, acc[r][v])
                with cgutils.for_range(builder, i) as k_loop:
                    k = k_loop.index
                    x = [_load_vector(builder, adata, at(k, col), vd) for col in cols]
                    for r in range(_CHOL_ROWS):
                        u_kr = builder.load(builder.gep(adata, [at(k, rows[r])]))
                        s = _splat(builder, builder.fneg(u_kr), vd)
                        for v in range(_CHOL_VECTORS):
                            total = builder.call(fma, [x[v], s, builder.load(acc[r][v])])
                            builder.store(total, acc[r][v])
                for r in range(_CHOL_ROWS):
                    for v in range(_CHOL_VECTORS):
                        _store_vector(builder, builder.load(acc[r][v]), adata, at(rows[r], cols[v]))
            # 2. finish the block's rows in order
            step = _int(lanes)
            for r in range(_CHOL_ROWS):
                row = rows[r]
                with builder.if_then(builder.icmp_signed("<", row, size)):
                    for q in range(r):
                        u_qr = builder.load(builder.gep(adata, [at(rows[q], row)]))
                        s = _splat(builder, builder.fneg(u_qr), vd)
                        with cgutils.for_range_slice(builder, first_col, width, step) as (j0, _):
                            x = _load_vector(builder, adata, at(rows[q], j0), vd)
                            old = _load_vector(builder, adata, at(row, j0), vd)
                            new = builder.call(fma, [x, s, old])
                            _store_vector(builder, new, adata, at(row, j0))
                    diagonal = builder.gep(adata, [at(row, row)])
                    pivot = builder.load(diagonal)
                    positive = builder.fcmp_ordered(">", pivot, ir.Constant(_F64, 1e-12))
                    pivot = builder.select(
                        positive, builder.call(sqrt, [pivot]), ir.Constant(_F64, 1e-6)
                    )
                    inverse = _splat(builder, builder.fdiv(ir.Constant(_F64, 1.0), pivot), vd)
                    with cgutils.for_range_slice(builder, first_col, width, step) as (j0, _):
                        old = _load_vector(builder, adata, at(row, j0), vd)
                        _store_vector(builder, builder.fmul(old, inverse), adata, at(row, j0))
                    builder.store(pivot, diagonal)
        return context.get_dummy_value()

    return sig, codegen


def _back_substitute(typingctx: Any, a: Any, d: Any, x: Any) -> Any:
    """Solve ``U x = y`` for the upper-triangular ``U = a[:d, :d]`` and ``y`` in column ``d`` of
    ``a`` (as :func:`cholesky_upper` leaves them): ``x_i = (y_i − U[i, i+1:] · x[i+1:]) / U_ii``,
    each dot product a vector at a time. ``x`` needs ``PAD`` entries more than ``d``."""
    if not _c_contiguous(a, x):
        return None
    sig = types.void(a, d, x)

    def codegen(
        context: Any, builder: ir.IRBuilder, signature: Any, args: list[ir.Value]
    ) -> ir.Value:
        adata, acols = _matrix(context, builder, signature.args[0], args[0])
        size = args[1]
        xdata = context.make_array(signature.args[2])(context, builder, args[2]).data
        lanes = _F64_LANES
        vd = ir.VectorType(_F64, lanes)
        vi = ir.VectorType(_I64, lanes)
        lane_index = ir.Constant(vi, list(range(lanes)))
        zero = ir.Constant(vd, [0.0] * lanes)
        reduce_add = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(_F64, [_F64, vd]),
            f"llvm.vector.reduce.fadd.v{lanes}f64",
        )
        acc = cgutils.alloca_once(builder, vd)
        last = _splat(builder, size, vi)
        with cgutils.for_range(builder, size) as loop:
            i = builder.sub(builder.sub(size, _int(1)), loop.index)
            row = builder.mul(i, acols)
            after = builder.add(i, _int(1))
            builder.store(zero, acc)
            first_col = _round_down(builder, after, lanes)
            step = _int(lanes)
            with cgutils.for_range_slice(builder, first_col, size, step) as (j0, _):
                j = builder.add(_splat(builder, j0, vi), lane_index)
                inside = builder.and_(
                    builder.icmp_signed(">", j, _splat(builder, i, vi)),
                    builder.icmp_signed("<", j, last),
                )
                u = _load_vector(builder, adata, builder.add(row, j0), vd)
                product = builder.fmul(u, _load_vector(builder, xdata, j0, vd))
                product = builder.select(inside, product, zero)
                builder.store(builder.fadd(builder.load(acc), product), acc)
            dot = builder.call(reduce_add, [ir.Constant(_F64, 0.0), builder.load(acc)])
            y = builder.load(builder.gep(adata, [builder.add(row, size)]))
            pivot = builder.load(builder.gep(adata, [builder.add(row, i)]))
            builder.store(builder.fdiv(builder.fsub(y, dot), pivot), builder.gep(xdata, [i]))
        return context.get_dummy_value()

    return sig, codegen


def _gather_rows(
    typingctx: Any,
    block: Any,
    indices: Any,
    values: Any,
    factors: Any,
    bias: Any,
    mean: Any,
    start: Any,
    n: Any,
) -> Any:
    """Row ``j < n`` of ``block`` becomes ``[factors[i], 1, values[r] − mean − bias[i]]`` for
    rating ``r = start + j`` of column ``i = indices[r]``; the columns after stay as they are.

    A vector copy of each factor row (what Numba's slice assignment spends dozens of
    instructions on). ``factors`` must be float32, like ``block``.
    """
    if not (
        _c_contiguous(block, indices, values, factors, bias) and factors.dtype == types.float32
    ):
        return None
    sig = types.void(block, indices, values, factors, bias, mean, start, n)

    def codegen(
        context: Any, builder: ir.IRBuilder, signature: Any, args: list[ir.Value]
    ) -> ir.Value:
        bty, ity, vty, fty, biasty = signature.args[:5]
        bdata, bcols = _matrix(context, builder, bty, args[0])
        fdata, k = _matrix(context, builder, fty, args[3])
        index_data = context.make_array(ity)(context, builder, args[1]).data
        value_data = context.make_array(vty)(context, builder, args[2]).data
        bias_data = context.make_array(biasty)(context, builder, args[4]).data
        mean = context.cast(builder, args[5], signature.args[5], types.float64)
        first = context.cast(builder, args[6], signature.args[6], types.int64)
        count = context.cast(builder, args[7], signature.args[7], types.int64)
        vf = ir.VectorType(_F32, LANES)
        whole = _round_down(builder, k, LANES)
        with cgutils.for_range(builder, count) as loop:
            r = builder.add(first, loop.index)
            i = builder.load(builder.gep(index_data, [r]))
            i = context.cast(builder, i, ity.dtype, types.int64)
            src = builder.mul(i, k)
            dst = builder.mul(loop.index, bcols)
            with cgutils.for_range_slice(builder, _int(0), whole, _int(LANES)) as (f, _):
                vector = _load_vector(builder, fdata, builder.add(src, f), vf)
                _store_vector(builder, vector, bdata, builder.add(dst, f))
            with cgutils.for_range_slice(builder, whole, k, _int(1)) as (f, _):
                value = builder.load(builder.gep(fdata, [builder.add(src, f)]))
                builder.store(value, builder.gep(bdata, [builder.add(dst, f)]))
            one = builder.gep(bdata, [builder.add(dst, k)])
            builder.store(ir.Constant(_F32, 1.0), one)
            rating = builder.load(builder.gep(value_data, [r]))
            rating = context.cast(builder, rating, vty.dtype, types.float64)
            offset = builder.load(builder.gep(bias_data, [i]))
            offset = context.cast(builder, offset, biasty.dtype, types.float64)
            target = builder.fsub(builder.fsub(rating, mean), offset)
            target_slot = builder.gep(bdata, [builder.add(dst, builder.add(k, _int(1)))])
            builder.store(builder.fptrunc(target, _F32), target_slot)
        return context.get_dummy_value()

    return sig, codegen


# Typed ``Any`` for mypy: an intrinsic is called from Numba code without its typing context.
gram_upper: Any = intrinsic(_gram_upper)
cholesky_upper: Any = intrinsic(_cholesky_upper)
back_substitute: Any = intrinsic(_back_substitute)
gather_rows: Any = intrinsic(_gather_rows)
