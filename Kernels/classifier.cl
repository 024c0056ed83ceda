// The domain classifier's ops: global average pooling and cross-entropy (softmax + NLL).
// Labels are floats holding class indices, as the CPU reference reads them.

// y[plane] = mean of x over the plane's H·W values; one work-item per (image, channel).
kernel void global_average_pool(global float *y, global const float *x, int planes, int area) {
    int p = get_global_id(0);
    if (p >= planes) return;
    global const float *in = x + (long)p * area;
    float sum = 0.0f;
    for (int i = 0; i < area; i++) sum += in[i];
    y[p] = sum / (float)area;
}

// dx[i] = dy[i / area] / area
kernel void global_average_pool_backward(global float *dx, global const float *dy, int count, int area) {
    int i = get_global_id(0);
    if (i >= count) return;
    dx[i] = dy[i / area] / (float)area;
}

// partial[row] = logsumexp(z_row) − z_row[label_row]; one work-item per row.
kernel void cross_entropy_rows(global float *partial, global const float *z, global const float *labels, int rows, int classes) {
    int r = get_global_id(0);
    if (r >= rows) return;
    global const float *zr = z + (long)r * classes;
    float m = -INFINITY;
    for (int j = 0; j < classes; j++) m = fmax(m, zr[j]);
    float sum = 0.0f;
    for (int j = 0; j < classes; j++) sum += exp(zr[j] - m);
    int label = (int)labels[r];
    partial[r] = m + log(sum) - zr[label];
}

// loss[0] = mean of the row terms, summed in order (one work-item).
kernel void cross_entropy_finish(global float *loss, global const float *partial, int rows) {
    if (get_global_id(0) != 0) return;
    float total = 0.0f;
    for (int r = 0; r < rows; r++) total += partial[r];
    loss[0] = total / (float)rows;
}

// dz = dloss · (softmax(z_row) − onehot(label_row)) / rows; one work-item per row.
kernel void cross_entropy_backward(global float *dz, global const float *z, global const float *labels,
                                   global const float *dloss, int rows, int classes) {
    int r = get_global_id(0);
    if (r >= rows) return;
    long base = (long)r * classes;
    global const float *zr = z + base;
    float m = -INFINITY;
    for (int j = 0; j < classes; j++) m = fmax(m, zr[j]);
    float sum = 0.0f;
    for (int j = 0; j < classes; j++) sum += exp(zr[j] - m);
    float factor = dloss[0] / (float)rows;
    int label = (int)labels[r];
    for (int j = 0; j < classes; j++) {
        float p = exp(zr[j] - m) / sum;
        dz[base + j] = factor * (p - (j == label ? 1.0f : 0.0f));
    }
}
