/**
 * Submit for feedback: a button in the notebook's toolbar that saves the notebook, sends it to the course's
 * grading service (through the Jupyter server's `course-feedback/` handlers, `course.lab`, which hold the
 * service's address and the student's token: neither ever reaches the browser), shows its progress, then
 * each task's points and feedback in a panel beside the notebook.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { URLExt } from '@jupyterlab/coreutils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { ToolbarButton } from '@jupyterlab/ui-components';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

/** How often the submission is asked about (ms), and how long it is waited for (ms). */
const POLL_MS = 1000;
const WAIT_MS = 15 * 60 * 1000;

/** One task's result as the server extension gives it. */
interface ITask {
  task: string;
  score: number;
  max: number;
  feedback: string;
}

/** A submission's state: `status` is queued, grading, done, failed or waiting (the service did not answer). */
interface IView {
  status: string;
  text?: string;
  error?: string;
  assignment?: string;
  late?: boolean;
  tasks?: ITask[];
  total?: number;
  max?: number;
  notes?: string[];
  left?: string;
}

/** The JSON answer of the server extension's `path`; an Error with the sentence to show otherwise. */
async function call(path: string, init: RequestInit = {}): Promise<any> {
  const settings = ServerConnection.makeSettings();
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(URLExt.join(settings.baseUrl, 'course-feedback', path), init, settings);
  } catch (error) {
    throw new Error("JupyterLab's own server did not answer: is it still running?");
  }
  let data: any = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (data && typeof data.error === 'string') {
    throw new Error(data.error);
  }
  if (!response.ok || data === null) {
    throw new Error(
      `JupyterLab's server answered ${response.status} to the Submit for feedback button: was JupyterLab ` +
        'started as the README says (with JUPYTER_CONFIG_PATH=jupyter-config)?'
    );
  }
  return data;
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** An element with a class and text. */
function element(tag: string, className: string, text = ''): HTMLElement {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

/** The index of the cell to show for `task`: the heading above its first cell (the nearest markdown cell, not
 * above the task before it), else that first cell; -1 when the notebook has no such task. */
function taskCellIndex(panel: NotebookPanel, task: string): number {
  const cells = panel.content.widgets;
  const meta = cells.map(cell => (cell.model.getMetadata('nbgrader') as any) || {});
  const first = meta.findIndex(m => m.grade_id === task || m.grade_id === `${task}_code`);
  if (first < 0) {
    return -1;
  }
  for (let i = first - 1; i >= 0; i--) {
    const model = cells[i].model;
    if (model.type === 'markdown' && /^\s*#/m.test(model.sharedModel.getSource())) {
      return i;
    }
    if (meta[i].grade && !meta[i].solution) {
      break; // the grade cell of the task before this one: its heading is not this task's
    }
  }
  return first;
}

/** The panel beside a notebook: progress while it is graded, then each task's points and feedback. */
class FeedbackPanel extends Widget {
  constructor(readonly notebook: NotebookPanel) {
    super();
    this.id = `course-feedback-${notebook.id}`;
    this.addClass('jp-CourseFeedback');
    this.title.label = `Feedback: ${notebook.context.localPath.split('/').pop()}`;
    this.title.closable = true;
  }

  /** Show a line of progress (spinner and elapsed seconds). */
  progress(text: string, started: number): void {
    this.node.replaceChildren(
      element('h2', 'jp-CourseFeedback-title', 'Submit for feedback'),
      element('p', 'jp-CourseFeedback-progress', `${text} (${Math.round((Date.now() - started) / 1000)} s)`)
    );
  }

  /** Say what went wrong, plainly, with `help` lines below it. */
  problem(message: string, help: string[] = []): void {
    const box = element('div', 'jp-CourseFeedback-error');
    box.appendChild(element('p', 'jp-CourseFeedback-errorText', message));
    for (const line of help) {
      // a file's lines are shown as code, to be copied as they are
      box.appendChild(line.includes('\n') ? element('pre', 'jp-CourseFeedback-code', line) : element('p', '', line));
    }
    this.node.replaceChildren(element('h2', 'jp-CourseFeedback-title', 'Submit for feedback'), box);
  }

  /** Each task's points and feedback, the total, what is left this hour. */
  results(view: IView): void {
    const nodes: HTMLElement[] = [element('h2', 'jp-CourseFeedback-title', `Feedback: ${view.assignment || ''}`)];
    if (view.late) {
      nodes.push(element('p', 'jp-CourseFeedback-late', 'Submitted after the due date: marked late.'));
    }
    if (view.error) {
      nodes.push(element('p', 'jp-CourseFeedback-error jp-CourseFeedback-errorText', view.error));
    }
    const table = element('table', 'jp-CourseFeedback-tasks');
    const head = table.appendChild(element('tr', ''));
    for (const label of ['task', 'points', 'max']) {
      head.appendChild(element('th', '', label));
    }
    for (const task of view.tasks || []) {
      const full = task.score >= task.max;
      const row = element('tr', `jp-CourseFeedback-task ${full ? 'jp-mod-passed' : 'jp-mod-failed'}`);
      row.dataset.task = task.task;
      const name = row.appendChild(element('td', 'jp-CourseFeedback-taskName'));
      const link = name.appendChild(element('a', 'jp-CourseFeedback-link', task.task)) as HTMLAnchorElement;
      link.href = '#';
      link.title = `Show task ${task.task} in the notebook`;
      link.onclick = event => {
        event.preventDefault();
        void this.showTask(task.task);
      };
      row.appendChild(element('td', 'jp-CourseFeedback-score', `${task.score}`));
      row.appendChild(element('td', 'jp-CourseFeedback-max', `${task.max}`));
      table.appendChild(row);
      if (task.feedback) {
        const more = element('tr', 'jp-CourseFeedback-feedbackRow');
        more.dataset.task = task.task;
        const cell = more.appendChild(element('td', ''));
        (cell as HTMLTableCellElement).colSpan = 3;
        cell.appendChild(element('pre', 'jp-CourseFeedback-feedback', task.feedback));
        table.appendChild(more);
      }
    }
    const total = table.appendChild(element('tr', 'jp-CourseFeedback-total'));
    total.appendChild(element('td', '', 'total'));
    total.appendChild(element('td', '', `${view.total ?? 0}`));
    total.appendChild(element('td', '', `${view.max ?? 0}`));
    nodes.push(table);
    for (const note of view.notes || []) {
      nodes.push(element('p', 'jp-CourseFeedback-note', note));
    }
    if (view.left) {
      nodes.push(element('p', 'jp-CourseFeedback-left', view.left));
    }
    this.node.replaceChildren(...nodes);
  }

  /** Scroll the notebook to ``task``'s heading and make it the active cell. */
  async showTask(task: string): Promise<void> {
    const index = taskCellIndex(this.notebook, task);
    if (index < 0) {
      return;
    }
    const notebook = this.notebook.content;
    notebook.activeCellIndex = index;
    await notebook.scrollToCell(notebook.widgets[index], 'start');
  }
}

/** The button in each notebook's toolbar, and the panel it opens. */
class SubmitButtons implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  private panels = new Map<string, FeedbackPanel>();

  constructor(private app: JupyterFrontEnd) {}

  createNew(panel: NotebookPanel): IDisposable {
    const button = new ToolbarButton({
      className: 'jp-CourseFeedback-button',
      label: 'Submit for feedback',
      tooltip: "Save the notebook and send it to the course's grading service for each task's points and feedback",
      onClick: () => {
        button.enabled = false;
        void this.submit(panel).finally(() => {
          button.enabled = true;
        });
      }
    });
    panel.toolbar.insertItem(10, 'courseFeedback', button);
    return new DisposableDelegate(() => button.dispose());
  }

  /** The feedback panel of ``panel``'s notebook, opened beside it. */
  private panelOf(panel: NotebookPanel): FeedbackPanel {
    let feedback = this.panels.get(panel.id);
    if (!feedback || feedback.isDisposed) {
      feedback = new FeedbackPanel(panel);
      this.panels.set(panel.id, feedback);
      panel.disposed.connect(() => feedback!.dispose());
    }
    if (!feedback.isAttached) {
      this.app.shell.add(feedback, 'main', { mode: 'split-right', ref: panel.id });
    }
    return feedback;
  }

  /** Save, submit, wait, show. */
  async submit(panel: NotebookPanel): Promise<void> {
    const feedback = this.panelOf(panel);
    const path = panel.context.path;
    const started = Date.now();
    try {
      const config = await call(`config?${new URLSearchParams({ path })}`);
      if (!config.configured) {
        feedback.problem(config.problem, config.help || []);
        return;
      }
      feedback.progress('Saving the notebook', started);
      await panel.context.save();
      feedback.progress('Sending it to the grading service', started);
      const accepted = await call('submissions', { method: 'POST', body: JSON.stringify({ path }) });
      let view: IView = accepted;
      while (view.status !== 'done' && view.status !== 'failed') {
        if (Date.now() - started > WAIT_MS) {
          feedback.problem(
            `No result after ${WAIT_MS / 60000} minutes; the submission (${accepted.id}) is still being graded.`,
            [`See its results later with: python -m course.submit --status ${accepted.id}`]
          );
          return;
        }
        feedback.progress(view.text || view.status, started);
        await sleep(POLL_MS);
        view = await call(`submissions/${encodeURIComponent(accepted.id)}?${new URLSearchParams({ path })}`);
      }
      if (view.status === 'failed') {
        feedback.problem(view.error || 'Your submission could not be graded, through no fault of your notebook.');
        return;
      }
      feedback.results({ ...view, late: accepted.late });
    } catch (error) {
      feedback.problem((error as Error).message);
    }
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'course-feedback:plugin',
  description: "A Submit for feedback button: the course's grading service's verdict on each task, beside the notebook.",
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    app.docRegistry.addWidgetExtension('Notebook', new SubmitButtons(app));
  }
};

export default plugin;
