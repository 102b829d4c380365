/* === train over MPI: a deterministic gradient reduction for data-parallel training === */
#include "07_train.h"
#include <string.h>

#if defined(FTI_MPI) && !defined(FTI_NO_TRAIN)

FTIDEF void fti_train_mpi_free(fti_train_mpi *m) {
    if (!m) return;
    fti_aligned_free(m->buf);
    fti_free(m->counts);
    fti_free(m->displs);
    fti_free(m->losses);
    memset(m, 0, sizeof(*m));
}

FTIDEF fti_result fti_train_mpi_init(fti_train_mpi *m, MPI_Comm comm, fti_error *err) {
    MPI_Comm local;
    if (!m) return fti_error_set(err, FTI_ERR_INVALID, "train mpi: NULL");
    memset(m, 0, sizeof(*m));
    m->comm = comm;
    if (MPI_Comm_rank(comm, &m->rank) != MPI_SUCCESS ||
        MPI_Comm_size(comm, &m->world) != MPI_SUCCESS || m->world < 1)
        return fti_error_set(err, FTI_ERR_IO, "train mpi: cannot query the communicator");
    m->local_size = 1;
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, m->rank, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        if (MPI_Comm_size(local, &m->local_size) != MPI_SUCCESS || m->local_size < 1)
            m->local_size = 1;
        MPI_Comm_free(&local);
    }
    m->counts = (int *)fti_calloc((size_t)m->world * 2, sizeof(int));
    m->displs = (int *)fti_calloc((size_t)m->world * 2, sizeof(int));
    m->losses = (double *)fti_calloc((size_t)m->world, sizeof(double));
    if (!m->counts || !m->displs || !m->losses) {
        fti_train_mpi_free(m);
        return fti_error_set(err, FTI_ERR_NOMEM, "train mpi: out of memory");
    }
    return FTI_OK;
}

FTIDEF void fti_train_mpi_attach(fti_train_mpi *m, fti_train_opts *o) {
    if (!m || !o) return;
    o->world_size = m->world;
    o->rank = m->rank;
    o->reduce = m->world > 1 ? fti_train_mpi_reduce : NULL;
    o->reduce_user = m;
}

/* One round over x[0, n), n <= FTI_TRAIN_MPI_SEGMENT: rank j owns slice j (sizes differ by at
 * most one); pieces arrive in rank order in buf (world, slice) and are summed in that order. */
static fti_result fti__train_mpi_round(fti_train_mpi *m, float *x, size_t n) {
    int W = m->world, j, mine;
    size_t base = n / (size_t)W, extra = n % (size_t)W, k, off = 0, need;
    float *acc;
    for (j = 0; j < W; j++) {
        m->counts[j] = (int)(base + ((size_t)j < extra ? 1 : 0));
        m->displs[j] = (int)off;
        off += (size_t)m->counts[j];
    }
    mine = m->counts[m->rank];
    need = (base + (extra ? 1 : 0)) * (size_t)W; /* the same on every rank */
    if (need > m->cap) { /* grows on the first call; all ranks agree on success (no hang) */
        size_t bytes;
        float *nb = NULL;
        int ok, all_ok = 0;
        if (fti_size_mul(need, sizeof(float), &bytes)) nb = (float *)fti_aligned_alloc(bytes, 64);
        ok = nb != NULL;
        if (MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, m->comm) != MPI_SUCCESS) all_ok = 0;
        if (!all_ok) {
            fti_aligned_free(nb);
            return FTI_ERR_NOMEM;
        }
        fti_aligned_free(m->buf);
        m->buf = nb;
        m->cap = need;
    }
    /* send slice j of x to rank j; receive this rank's slice from every rank, in rank order */
    for (j = 0; j < W; j++) {
        m->counts[W + j] = mine;
        m->displs[W + j] = j * mine;
    }
    if (MPI_Alltoallv(x, m->counts, m->displs, MPI_FLOAT, m->buf, m->counts + W, m->displs + W,
                      MPI_FLOAT, m->comm) != MPI_SUCCESS)
        return FTI_ERR_IO;
    /* the fixed order: ((p0 + p1) + p2) + ... */
    acc = x + m->displs[m->rank];
    for (k = 0; k < (size_t)mine; k++) acc[k] = m->buf[k];
    for (j = 1; j < W; j++) {
        const float *p = m->buf + (size_t)j * (size_t)mine;
        for (k = 0; k < (size_t)mine; k++) acc[k] += p[k];
    }
    if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, x, m->counts, m->displs, MPI_FLOAT, m->comm) !=
        MPI_SUCCESS)
        return FTI_ERR_IO;
    m->bytes_sent += 2 * (uint64_t)(n - (size_t)mine) * sizeof(float);
    return FTI_OK;
}

FTIDEF fti_result fti_train_mpi_reduce(void *user, float *grads, size_t n, double *loss_sum) {
    fti_train_mpi *m = (fti_train_mpi *)user;
    double t0, s;
    size_t off;
    int j;
    fti_result r = FTI_OK;
    if (!m || (!grads && n)) return FTI_ERR_INVALID;
    t0 = MPI_Wtime();
    for (off = 0; off < n && r == FTI_OK; off += FTI_TRAIN_MPI_SEGMENT) {
        size_t len = n - off < FTI_TRAIN_MPI_SEGMENT ? n - off : FTI_TRAIN_MPI_SEGMENT;
        r = fti__train_mpi_round(m, grads + off, len);
    }
    if (r == FTI_OK && loss_sum) {
        s = *loss_sum;
        if (MPI_Allgather(&s, 1, MPI_DOUBLE, m->losses, 1, MPI_DOUBLE, m->comm) != MPI_SUCCESS)
            r = FTI_ERR_IO;
        else {
            s = m->losses[0];
            for (j = 1; j < m->world; j++) s += m->losses[j];
            *loss_sum = s;
        }
    }
    m->comm_s += MPI_Wtime() - t0;
    m->reductions++;
    return r;
}

#endif /* FTI_MPI && !FTI_NO_TRAIN */
