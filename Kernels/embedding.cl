// Class conditioning: an embedding table looked up by index (torch's nn.Embedding) and its gradient.
// Indices are floats holding row numbers, as the CPU reference reads them (Sources/DDPMCPU/Embedding.swift).

// y[i] = table[indices[i / dim]·dim + i % dim]; one work-item per output element. An index outside
// the table (the reference stops there) gives NaN instead of a read past the buffer.
kernel void embedding_forward(global float *y, global const float *table, global const float *indices,
                              int rows, int dim, int count) {
    int i = get_global_id(0);
    if (i >= count) return;
    int n = i / dim, d = i - n * dim;
    int k = (int)indices[n];
    y[i] = (k >= 0 && k < rows) ? table[(long)k * dim + d] : NAN;
}

// dtable[k·dim + d] = Σ_n [indices[n] = k] · dy[n·dim + d], summed in increasing n as the reference
// does; one work-item per table element, so no two items write the same output (no atomics).
kernel void embedding_backward(global float *dtable, global const float *dy, global const float *indices,
                               int images, int dim, int count) {
    int i = get_global_id(0);
    if (i >= count) return;
    int k = i / dim, d = i - k * dim;
    float sum = 0.0f;
    for (int n = 0; n < images; n++) {
        if ((int)indices[n] == k) sum += dy[(long)n * dim + d];
    }
    dtable[i] = sum;
}
